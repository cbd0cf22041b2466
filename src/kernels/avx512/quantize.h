// Quantization of an int8 layer's input (ops.h, quantize_channels_s8), hand-written for AVX-512:
// sixteen values per step, narrowed to bytes by one saturating store (vpmovdb) instead of AVX2's
// two packs and a permutation per 32. It was 6% of the S0 text encoder's int8 time at batch 100
// on two threads of the AMX Xeon with the AVX2 version.
#pragma once

#include <cstdint>

#include "kernels/avx512/cpu.h"

namespace mclip::kernels::avx512 {

// x [rows, channels] (float32, or bf16 bit patterns when `bf16`) → y = quantize_s8(x, inverse_steps[c]).
// Requires cpu_supported() (cpu.h).
void quantize_rows_s8(bool bf16, const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y);

}  // namespace mclip::kernels::avx512
