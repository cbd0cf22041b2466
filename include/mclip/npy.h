// numpy's .npy files, the exchange format of mclip's embeddings, preprocessed images and token ids
// with Python (numpy.load / numpy.save).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "mclip/export.h"

namespace mclip {

template <typename T>
struct Array {
    std::vector<int64_t> shape;
    std::vector<T> values;  // C order
};

// A float32 array; Error(invalid_input) naming the file for any other dtype, a big-endian or
// Fortran-order array, or a truncated file.
MCLIP_API Array<float> read_npy_f32(const std::filesystem::path& path);
// An int32 or int64 array as int64 values.
MCLIP_API Array<int64_t> read_npy_integers(const std::filesystem::path& path);
// Writes float32 values of the given shape (their count must match) atomically.
MCLIP_API void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* values);

}  // namespace mclip
