#include "mclip/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "common/error.h"

namespace mclip {

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    std::string pattern = (dir / ("." + target_.filename().string() + ".tmp-XXXXXX")).string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    const int fd = mkstemp(buffer.data());
    if (fd < 0) throw_system_error(target_.string(), "cannot create a temporary file beside it");
    temporary_ = buffer.data();
    fchmod(fd, 0644);
    file_ = fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        std::filesystem::remove(temporary_);
        throw_system_error(target_.string(), "cannot open temporary file");
    }
}

AtomicFile::~AtomicFile() {
    if (file_) std::fclose(file_);
    if (!committed_ && !temporary_.empty()) {
        std::error_code ignored;
        std::filesystem::remove(temporary_, ignored);
    }
}

void AtomicFile::write(const void* data, size_t size) {
    if (size && std::fwrite(data, 1, size, file_) != size) throw_system_error(target_.string(), "write failed");
    written_ += size;
}

void AtomicFile::pad_to(size_t alignment) {
    static const char zeros[256] = {};
    size_t padding = (alignment - written_ % alignment) % alignment;
    while (padding) {
        const size_t chunk = padding < sizeof zeros ? padding : sizeof zeros;
        write(zeros, chunk);
        padding -= chunk;
    }
}

void AtomicFile::commit() {
    if (std::fflush(file_) != 0 || fsync(fileno(file_)) != 0) throw_system_error(target_.string(), "flush failed");
    if (std::fclose(file_) != 0) {
        file_ = nullptr;
        throw_system_error(target_.string(), "close failed");
    }
    file_ = nullptr;
    if (std::rename(temporary_.c_str(), target_.c_str()) != 0) throw_system_error(target_.string(), "rename failed");
    committed_ = true;
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
    AtomicFile file(path);
    file.write(content);
    file.commit();
}

}  // namespace mclip
