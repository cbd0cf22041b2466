// Text side of zero-shot classification: label set + templates → one unit embedding per class,
// read from the disk cache when this model has encoded these exact prompts before.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"
#include "tensor/tensor.h"

namespace mclip {

struct ClassEmbeddings {
    Tensor classes;            // [labels, embed_dim], unit length
    bool from_cache = false;
    double seconds = 0;        // time to produce them (encode or read)
    std::filesystem::path cache_entry;  // empty when caching is off
};

// What a model's embeddings are computed with, for the cache key: the precision, the backend and
// the instruction sets its kernels use here, e.g. "int8 onednn AVX2". The same model and precision
// give different numbers on different kernels beyond float rounding (int8 keeps 7-bit weights and
// float32 between layers on AVX2, 8-bit weights and bf16 with VNNI or AMX; the reference backend
// emulates the latter), so a cache directory shared between machines serves each its own.
std::string embedding_numerics(const ClipModel& model);

// cache_dir: where entries live (nullopt disables the cache).
ClassEmbeddings embed_labels(const ClipModel& model, const std::vector<std::string>& labels,
                             const std::vector<std::string>& templates, const std::optional<std::filesystem::path>& cache_dir);

}  // namespace mclip
