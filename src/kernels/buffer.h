// Reusable, 64-byte aligned scratch memory: buffers that grow on demand and are kept between
// calls, so inference in a steady state (same batch size) allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace mclip::kernels {

class AlignedBuffer {
public:
    // At least `bytes` bytes, 64-byte aligned; the old contents are lost when it grows.
    void* reserve(size_t bytes);
    size_t capacity() const { return capacity_; }
    void* data() const { return data_.get(); }

private:
    struct Free {
        void operator()(void* p) const;
    };
    std::unique_ptr<void, Free> data_;
    size_t capacity_ = 0;
};

// Numbered scratch buffers for one running inference (the graph names its slots).
class Workspace {
public:
    float* floats(int slot, int64_t count) { return static_cast<float*>(bytes(slot, static_cast<size_t>(count) * sizeof(float))); }
    void* bytes(int slot, size_t count);

private:
    std::vector<AlignedBuffer> slots_;
};

// Workspaces shared by the calls of one encoder: a call takes a free one (or makes one when all
// are in use by concurrent calls) and gives it back when done.
class WorkspacePool {
public:
    class Lease {
    public:
        Lease(WorkspacePool& pool, std::unique_ptr<Workspace> workspace) : pool_(pool), workspace_(std::move(workspace)) {}
        ~Lease() { pool_.give_back(std::move(workspace_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Workspace& operator*() const { return *workspace_; }
        Workspace* operator->() const { return workspace_.get(); }

    private:
        WorkspacePool& pool_;
        std::unique_ptr<Workspace> workspace_;
    };

    Lease acquire();

private:
    void give_back(std::unique_ptr<Workspace> workspace);
    std::mutex mutex_;
    std::vector<std::unique_ptr<Workspace>> free_;
};

}  // namespace mclip::kernels
