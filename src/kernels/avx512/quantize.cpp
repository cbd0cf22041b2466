#include "kernels/avx512/quantize.h"

#include <immintrin.h>

#include <cstdint>

#include "kernels/avx512/vectors.h"

namespace mclip::kernels::avx512 {
namespace {

// Sixteen values (the lanes that exist) scaled, clamped to [−128, 127] (beyond int32's range
// cvtps2dq would give INT_MIN; a NaN becomes −128, as in the AVX2 version), rounded half to
// even by cvtps2dq (the default rounding mode) and stored as bytes.
template <typename In>
MCLIP_AVX512 void quantize_rows(const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y) {
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = r * channels;
        for (int c = 0; c < channels; c += kLanes) {
            const __mmask16 lanes = lanes_from(c, channels);
            const __m512 scaled = _mm512_mul_ps(load16(static_cast<const In*>(x) + row + c, lanes), _mm512_maskz_loadu_ps(lanes, inverse_steps + c));
            const __m512 clamped = _mm512_maskz_min_ps(lanes, _mm512_maskz_max_ps(lanes, scaled, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
            _mm512_mask_cvtepi32_storeu_epi8(y + row + c, lanes, _mm512_maskz_cvtps_epi32(lanes, clamped));
        }
    }
}

}  // namespace

void quantize_rows_s8(bool bf16, const void* x, int64_t rows, int channels, const float* inverse_steps, int8_t* y) {
    (bf16 ? quantize_rows<uint16_t> : quantize_rows<float>)(x, rows, channels, inverse_steps, y);
}

}  // namespace mclip::kernels::avx512
