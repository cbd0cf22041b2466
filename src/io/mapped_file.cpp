#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "common/error.h"

namespace mclip {

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_system_error(path.string(), "cannot open");
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        ::close(fd);
        throw_system_error(path.string(), "cannot stat");
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw Error(ErrorCode::io, path.string() + ": is a directory, not a file");
    }
    std::shared_ptr<MappedFile> file(new MappedFile());
    file->path_ = path.string();
    file->size_ = static_cast<size_t>(st.st_size);
    if (file->size_ > 0) {
        void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            throw_system_error(path.string(), "cannot map");
        }
        file->data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
    return file;
}

MappedFile::~MappedFile() {
    if (data_) munmap(const_cast<std::byte*>(data_), size_);
}

std::string read_file(const std::filesystem::path& path, uint64_t max_bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_system_error(path.string(), "cannot open");
    // Read in chunks rather than by the size stat() reports: pipes and /proc files have none.
    std::string text;
    std::vector<char> chunk(1 << 16);  // on the heap: callers' threads may have small stacks (a server's)
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
        text.append(chunk.data(), static_cast<size_t>(in.gcount()));
        if (text.size() > max_bytes) {
            throw Error(ErrorCode::invalid_input, path.string() + ": larger than " + std::to_string(max_bytes) + " bytes, too large for this kind of file");
        }
    }
    if (in.bad()) throw_system_error(path.string(), "read failed");
    return text;
}

}  // namespace mclip
