#include "kernels/buffer.h"

#include <cstdlib>

#include "common/aligned_memory.h"

namespace mclip::kernels {

void AlignedBuffer::Free::operator()(void* p) const { std::free(p); }

void* AlignedBuffer::reserve(size_t bytes) {
    if (bytes <= capacity_ && data_) return data_.get();
    data_.reset();
    void* p = allocate_aligned(bytes);
    data_.reset(p);
    capacity_ = bytes;
    return p;
}

void* Workspace::bytes(int slot, size_t count) {
    if (static_cast<size_t>(slot) >= slots_.size()) slots_.resize(slot + 1);
    return slots_[slot].reserve(count);
}

WorkspacePool::Lease WorkspacePool::acquire() {
    std::unique_ptr<Workspace> workspace;
    {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            workspace = std::move(free_.back());
            free_.pop_back();
        }
    }
    if (!workspace) workspace = std::make_unique<Workspace>();
    return Lease(*this, std::move(workspace));
}

void WorkspacePool::give_back(std::unique_ptr<Workspace> workspace) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(workspace));
}

}  // namespace mclip::kernels
