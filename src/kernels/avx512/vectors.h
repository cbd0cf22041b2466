// What the hand-written AVX-512 kernels share below their own arithmetic: the register width,
// masks for a ragged last block of channels, and loading float32 or bf16 as float32.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/avx512/cpu.h"

namespace mclip::kernels::avx512 {

inline constexpr int kLanes = 16;  // float32 or int32 lanes of a zmm register
inline constexpr __mmask16 kAllLanes = 0xFFFF;

// The lanes of the 16 channels from c on that exist among `channels`.
inline __mmask16 lanes_from(int c, int channels) {
    return static_cast<__mmask16>((1u << std::min(kLanes, channels - c)) - 1u);
}

// Sixteen values from x, float32 or bf16 (uint16_t bit patterns), as float32; lanes outside
// `lanes` are not read and are zero. bf16 is the top half of a float32: its patterns are widened
// and shifted up.
template <typename In>
MCLIP_AVX512 inline __m512 load16(const In* x, __mmask16 lanes) {
    static_assert(std::is_same_v<In, float> || std::is_same_v<In, uint16_t>);
    if constexpr (std::is_same_v<In, float>) {
        return _mm512_maskz_loadu_ps(lanes, x);
    } else {
        const __m256i bits = _mm256_maskz_loadu_epi16(lanes, x);
        return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(lanes, _mm512_maskz_cvtepu16_epi32(lanes, bits), 16));
    }
}

}  // namespace mclip::kernels::avx512
