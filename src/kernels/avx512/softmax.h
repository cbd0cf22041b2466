// The softmax of attention scores on 512-bit registers, shared by the attention kernels (this
// folder's, in float32, and kernels/amx's, which rounds the probabilities to bf16). Compiled for
// AVX512F alone, so that functions compiled for any wider AVX-512 target inline them.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#define MCLIP_AVX512F __attribute__((target("avx512f")))

namespace mclip::kernels::avx512 {

// exp(x) for x ≤ 0 (a shifted softmax score): 2^k · e^r with k = round(x·log2 e), r = x − k·ln 2
// (ln 2 in two parts), e^r by its degree-6 Taylor polynomial; below −87 the result is ~1e-38
// instead of 0, which vanishes in the probabilities' sum anyway.
MCLIP_AVX512F inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_maskz_max_ps(0xFFFF, x, _mm512_set1_ps(-87.0f));
    const __m512 k = _mm512_maskz_roundscale_ps(0xFFFF, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(0xFFFF, p, k);
}

// The largest and the sum of a vector's lanes, in every lane.
MCLIP_AVX512F inline __m512 largest_lane(__m512 v) {
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(2, 3, 0, 1)));
}
MCLIP_AVX512F inline __m512 lane_sum(__m512 v) {
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(2, 3, 0, 1)));
}

// Lanes [0, count − from) of a 16-lane block starting at `from`.
inline __mmask16 lanes_below(int from, int count) {
    return count - from >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << std::max(count - from, 0)) - 1u);
}

// The first half of a row's softmax: x[j] = exp(scale·(x[j] − max x)) for j < visible, and zeros
// from `visible` to the end of its block of 16. Returns 1 / Σ x[j] in every lane, by which the
// caller scales the row as it stores the probabilities.
MCLIP_AVX512F inline __m512 softmax_exponentials(float* x, int visible, float scale) {
    __m512 top = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < visible; j += 16) top = _mm512_mask_max_ps(top, lanes_below(j, visible), top, _mm512_loadu_ps(x + j));
    const __m512 shift = largest_lane(top), scaled = _mm512_set1_ps(scale);
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < visible; j += 16) {
        const __m512 e = exp_nonpositive(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), shift), scaled));
        const __m512 kept = _mm512_maskz_mov_ps(lanes_below(j, visible), e);
        sum = _mm512_add_ps(sum, kept);
        _mm512_storeu_ps(x + j, kept);
    }
    return _mm512_div_ps(_mm512_set1_ps(1.0f), lane_sum(sum));
}

}  // namespace mclip::kernels::avx512
