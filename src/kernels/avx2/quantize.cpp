#include "kernels/avx2/quantize.h"

#include <immintrin.h>

#include "kernels/ops.h"
#include "tensor/tensor.h"

namespace mclip::kernels::avx2 {
namespace {

template <bool Bf16>
__attribute__((target("avx2,fma"))) inline __m256 load8(const void* x, int64_t at) {
    if constexpr (Bf16) {
        const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(x) + at));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    } else {
        return _mm256_loadu_ps(static_cast<const float*>(x) + at);
    }
}

// Eight values scaled, clamped to [−128, 127] (beyond int32's range cvtps2dq would give INT_MIN)
// and rounded half to even by cvtps2dq (the default rounding mode), as quantize_s8.
template <bool Bf16>
__attribute__((target("avx2,fma"))) inline __m256i quantize8(const void* x, int64_t at, const float* inverse_steps) {
    const __m256 scaled = _mm256_mul_ps(load8<Bf16>(x, at), _mm256_loadu_ps(inverse_steps));
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(scaled, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    return _mm256_cvtps_epi32(clamped);
}

template <bool Bf16>
__attribute__((target("avx2,fma"))) void quantize_rows(const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y) {
    // packs work within 128-bit halves: after the two packs the 32 bytes hold, by groups of
    // four, a0 b0 c0 d0 a1 b1 c1 d1 (a0: values 0–3, a1: 4–7, b: 8–15, ...); the permutation
    // puts the groups back in order.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = r * channels;
        int c = 0;
        for (; c + 32 <= channels; c += 32) {
            const __m256i a = quantize8<Bf16>(x, row + c, inverse_steps + c);
            const __m256i b = quantize8<Bf16>(x, row + c + 8, inverse_steps + c + 8);
            const __m256i cc = quantize8<Bf16>(x, row + c + 16, inverse_steps + c + 16);
            const __m256i d = quantize8<Bf16>(x, row + c + 24, inverse_steps + c + 24);
            const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(cc, d));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + row + c), _mm256_permutevar8x32_epi32(bytes, order));
        }
        for (; c < channels; ++c) {
            const float v = Bf16 ? mclip::bf16_to_f32(static_cast<const uint16_t*>(x)[row + c]) : static_cast<const float*>(x)[row + c];
            y[row + c] = quantize_s8(v, inverse_steps[c]);
        }
    }
}

}  // namespace

void quantize_rows_s8(bool bf16, const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y) {
    (bf16 ? quantize_rows<true> : quantize_rows<false>)(x, rows, channels, inverse_steps, y);
}

}  // namespace mclip::kernels::avx2
