// A read-only memory map of a whole file. Model files are mapped, not read, so loading is
// instant and the weights are shared between processes through the page cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace mclip {

class MappedFile {
public:
    // Throws Error(io) naming the path when the file cannot be opened or mapped.
    static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

private:
    MappedFile() = default;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
    std::string path_;
};

// Reads a whole (small) file into a string; throws Error(io) naming the path, and
// Error(invalid_input) when it holds more than max_bytes (a vocabulary is a few megabytes).
inline constexpr uint64_t kMaxSmallFileBytes = uint64_t{16} << 20;
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes = kMaxSmallFileBytes);

}  // namespace mclip
