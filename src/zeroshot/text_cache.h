// A disk cache of prompt embeddings, so a label set is encoded once per model.
//
// The key is the SHA-256 of the model's content hash, what the numbers were computed with (the
// precision and the kernels: bf16 embeddings differ from float32 ones, and int8 ones from one CPU
// kind to another) and the exact prompts, so a changed model, precision, kernel or prompt misses.
// Entries are written atomically and carry a checksum of their payload: a truncated or corrupted
// entry is detected, reported, and rebuilt.
//
// Entry layout: "MCLIPTXT" | uint32 version | uint32 rows | uint32 dim | 32-byte SHA-256 of the
// payload | rows × dim float32 (little-endian).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mclip {

class TextEmbeddingCache {
public:
    explicit TextEmbeddingCache(std::filesystem::path directory);

    // numerics: what the embeddings are computed with, as embedding_numerics() names it.
    static std::string key(const std::string& model_hash, const std::string& numerics, const std::vector<std::string>& prompts);
    std::filesystem::path entry_path(const std::string& key) const;

    // The cached [rows, dim] embeddings, or nullopt when absent or unusable (a corrupt entry is
    // logged as a warning and removed).
    std::optional<Tensor> load(const std::string& key, int64_t rows, int64_t dim) const;
    void store(const std::string& key, const Tensor& embeddings) const;

private:
    std::filesystem::path directory_;
};

}  // namespace mclip
