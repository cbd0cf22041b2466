// numpy's .npy format (version 1.0 to 3.0): magic "\x93NUMPY", version, header length
// (uint16 for 1.0, uint32 for 2.0/3.0), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (N, C, H, W), } padded with spaces and a
// newline so the data starts 64-byte aligned, then the raw C-order data.
#pragma once

#include <filesystem>

#include "tensor/tensor.h"

namespace mclip {

// Reads float16/32/64, int8/16/32/64, uint8 and bool arrays in little-endian C order; anything
// else (big-endian, Fortran order, object or structured dtypes, truncated data) is refused with
// a message naming the file and the reason.
Tensor read_npy(const std::filesystem::path& path);
Tensor parse_npy(std::span<const std::byte> bytes, const std::string& name);

// Writes a tensor as .npy version 1.0, atomically.
void write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace mclip
