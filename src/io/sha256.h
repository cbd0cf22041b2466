// SHA-256 digests (OpenSSL), as lowercase hex.
#pragma once

#include <filesystem>
#include <span>
#include <string>

namespace mclip {

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_file_hex(const std::filesystem::path& path);

// Incremental hashing for data that arrives in pieces (downloads, cache keys).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, size_t size);
    void update(std::string_view text) { update(text.data(), text.size()); }
    std::string hex_digest();  // finishes the hash

private:
    void* context_;
};

}  // namespace mclip
