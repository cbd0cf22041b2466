#include "zeroshot/text_cache.h"

#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "mclip/atomic_file.h"
#include "io/mapped_file.h"
#include "io/sha256.h"

namespace mclip {
namespace {

constexpr char kMagic[8] = {'M', 'C', 'L', 'I', 'P', 'T', 'X', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 4 + 32;

std::vector<uint8_t> digest_bytes(const void* data, size_t size) {
    Sha256 h;
    h.update(data, size);
    const std::string hex = h.hex_digest();
    std::vector<uint8_t> bytes(32);
    for (size_t i = 0; i < 32; ++i) bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    return bytes;
}

}  // namespace

TextEmbeddingCache::TextEmbeddingCache(std::filesystem::path directory) : directory_(std::move(directory)) {}

std::string TextEmbeddingCache::key(const std::string& model_hash, const std::string& numerics, const std::vector<std::string>& prompts) {
    Sha256 h;
    // Fields are length-prefixed, so no two (numerics, prompts) pairs hash the same input. "v3"
    // since the field names the kernels as well as the precision (v2: the precision alone).
    const auto update_field = [&h](const std::string& field) {
        h.update("\n" + std::to_string(field.size()) + ":");
        h.update(field);
    };
    h.update("mclip-text-embeddings-v3\n");
    h.update(model_hash);
    update_field(numerics);
    for (const auto& p : prompts) update_field(p);
    return h.hex_digest();
}

std::filesystem::path TextEmbeddingCache::entry_path(const std::string& key) const { return directory_ / (key + ".bin"); }

std::optional<Tensor> TextEmbeddingCache::load(const std::string& key, int64_t rows, int64_t dim) const {
    const auto path = entry_path(key);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
    std::string problem;
    try {
        const auto file = MappedFile::open(path);
        const size_t payload = static_cast<size_t>(rows * dim) * sizeof(float);
        const std::byte* p = file->data();
        uint32_t header[3];
        if (file->size() != kHeaderBytes + payload) {
            problem = "size " + std::to_string(file->size()) + " instead of " + std::to_string(kHeaderBytes + payload);
        } else if (std::memcmp(p, kMagic, 8) != 0) {
            problem = "bad magic";
        } else {
            std::memcpy(header, p + 8, sizeof header);
            if (header[0] != kVersion || header[1] != rows || header[2] != dim) {
                problem = "unexpected version or shape";
            } else if (digest_bytes(p + kHeaderBytes, payload) != std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(p + 20),
                                                                                          reinterpret_cast<const uint8_t*>(p + 52))) {
                problem = "checksum mismatch";
            } else {
                Tensor t = Tensor::zeros_f32({rows, dim});
                std::memcpy(t.data(), p + kHeaderBytes, payload);
                return t;
            }
        }
    } catch (const Error& e) {
        problem = e.what();
    }
    log_warning("text embedding cache entry " + path.string() + " is corrupt (" + problem + "); rebuilding it");
    std::filesystem::remove(path, ec);
    return std::nullopt;
}

void TextEmbeddingCache::store(const std::string& key, const Tensor& embeddings) const {
    std::filesystem::create_directories(directory_);
    const uint32_t header[3] = {kVersion, static_cast<uint32_t>(embeddings.dim(0)), static_cast<uint32_t>(embeddings.dim(1))};
    AtomicFile out(entry_path(key));
    out.write(kMagic, 8);
    out.write(header, sizeof header);
    const auto digest = digest_bytes(embeddings.data(), embeddings.bytes());
    out.write(digest.data(), digest.size());
    out.write(embeddings.data(), embeddings.bytes());
    out.commit();
}

}  // namespace mclip
