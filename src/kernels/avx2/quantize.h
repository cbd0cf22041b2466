// Quantization of an int8 layer's input (ops.h, quantize_channels_s8), hand-written for AVX2:
// GCC lowers the narrowing of float32 lanes to bytes one lane at a time, while AVX2's saturating
// packs take 32 values in three instructions. oneDNN's quantizing reorder, which this replaces,
// ran at about 0.65 ns per value on two AVX2 threads.
#pragma once

#include <cstdint>

#include "kernels/avx2/cpu.h"

namespace mclip::kernels::avx2 {

// x [rows, channels] (float32, or bf16 bit patterns when `bf16`) → y = quantize_s8(x, inverse_steps[c]).
// Requires cpu_supported() (cpu.h).
void quantize_rows_s8(bool bf16, const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y);

}  // namespace mclip::kernels::avx2
