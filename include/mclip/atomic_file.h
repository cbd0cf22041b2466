// Outputs are written atomically: into a temporary file beside the target, flushed to disk, then
// renamed over it. A crash or an error mid-write leaves the old file (or no file), never a
// partial one.
#pragma once

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>

#include "mclip/export.h"

namespace mclip {

class MCLIP_API AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path target);
    ~AtomicFile();  // discards the temporary file unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t size);
    void write(std::string_view text) { write(text.data(), text.size()); }
    // Pads with zero bytes up to a multiple of `alignment` (relative to the file start).
    void pad_to(size_t alignment);
    size_t position() const { return written_; }
    // Flushes, fsyncs and renames the temporary file onto the target.
    void commit();

private:
    std::filesystem::path target_;
    std::filesystem::path temporary_;
    std::FILE* file_ = nullptr;
    size_t written_ = 0;
    bool committed_ = false;
};

// Convenience: atomically replaces `path` with `content`.
MCLIP_API void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace mclip
