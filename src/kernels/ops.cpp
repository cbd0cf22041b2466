#include "kernels/ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "common/error.h"
#include "common/target_clones.h"
#include "kernels/avx2/quantize.h"
#include "kernels/avx512/quantize.h"
#include "kernels/profile.h"
#include "kernels/reference/gemm.h"

namespace mclip::kernels {
namespace {

// Below this many elements an operator runs on the calling thread: waking the other threads
// costs more than the work (and far more on a busy machine, where a descheduled thread stalls
// the whole team).
constexpr int64_t kParallelThreshold = 1 << 17;

// Inner loops are compiled for several instruction sets and picked at run time (MCLIP_SIMD_CLONES).

[[gnu::always_inline]] inline uint16_t round_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (x >> 16) | 0x40u;
    return static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

[[gnu::always_inline]] inline float widen_bf16(uint16_t b) {
    const uint32_t x = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

// Sixteen floats as one value: GCC lowers the arithmetic to whatever vector width each
// instruction-set clone has. Used where plain loops do not vectorize (exp, erf, selects).
typedef float Vec16 __attribute__((vector_size(64)));
typedef int32_t Int16 __attribute__((vector_size(64)));

// The vector helpers below are always inlined into each instruction-set clone, so no call ever
// passes a 64-byte vector and the ABI note GCC gives for them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

[[gnu::always_inline]] inline Vec16 splat(float v) { return Vec16{} + v; }

// Sixteen bf16 values to float32 and back (round_to_bf16's rounding, NaN kept quiet), as whole
// vectors: the scalar conversions in a loop left GCC's AVX-512 clone at 0.6 ns per value, three
// times these.
typedef uint16_t Bf16x16 __attribute__((vector_size(32)));
typedef uint32_t UInt16 __attribute__((vector_size(64)));

[[gnu::always_inline]] inline Vec16 widen16(const uint16_t* x) {
    Bf16x16 bits;
    std::memcpy(&bits, x, sizeof(bits));
    return std::bit_cast<Vec16>(__builtin_convertvector(bits, UInt16) << 16);
}

[[gnu::always_inline]] inline void narrow16(Vec16 v, uint16_t* y) {
    const UInt16 x = std::bit_cast<UInt16>(v);
    const UInt16 rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const UInt16 quiet_nan = (x >> 16) | 0x40u;
    // All ones where |v| is NaN, from the sign of 0x7f800000 − |bits| (see at_least).
    const UInt16 nan = std::bit_cast<UInt16>(std::bit_cast<Int16>(0x7f800000u - (x & 0x7fffffffu)) >> 31);
    const Bf16x16 bits = __builtin_convertvector((nan & quiet_nan) | (~nan & rounded), Bf16x16);
    std::memcpy(y, &bits, sizeof(bits));
}

// max(x, low) and min(x, high), each lane. Written with the sign of x − bound instead of a
// comparison: GCC 12 lowers a comparison (or a ?: select, or a max) of 64-byte vectors to
// one scalar instruction per lane when the clone has no 64-byte registers (AVX2), which made
// exp16 several times slower there; subtraction, shifts and bit operations split into
// 32-byte halves.
[[gnu::always_inline]] inline Vec16 at_least(Vec16 x, float low) {
    const Int16 below = std::bit_cast<Int16>(x - low) >> 31;  // all ones where x < low
    return std::bit_cast<Vec16>((below & std::bit_cast<Int16>(splat(low))) | (~below & std::bit_cast<Int16>(x)));
}
[[gnu::always_inline]] inline Vec16 at_most(Vec16 x, float high) {
    const Int16 above = std::bit_cast<Int16>(high - x) >> 31;  // all ones where x > high
    return std::bit_cast<Vec16>((above & std::bit_cast<Int16>(splat(high))) | (~above & std::bit_cast<Int16>(x)));
}

// exp(x) = 2^k · e^r with k = round(x·log2 e) and r = x − k·ln 2 (ln 2 split in two for an exact
// product), |r| ≤ ln2/2; e^r by its degree-6 Taylor polynomial (truncation < 2e-7 relative).
// Rounding adds and subtracts 1.5·2^23. Inputs are clamped to [−87, 88]: below −87 it gives
// ~1e-38 instead of 0.
[[gnu::always_inline]] inline Vec16 exp16(Vec16 x) {
    x = at_most(at_least(x, -87.0f), 88.0f);
    const Vec16 shifter = splat(12582912.0f);
    const Vec16 k = (x * 1.44269504088896341f + shifter) - shifter;
    const Vec16 r = x - k * 0.693359375f + k * 2.12194440e-4f;
    Vec16 p = splat(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const Int16 scale = (__builtin_convertvector(k, Int16) + 127) << 23;
    return p * std::bit_cast<Vec16>(scale);
}

// gelu(v) = ½·v·(1 + erf(v/√2)), with erf(z) = z·P(z²)/Q(z²) on z clamped to [−4, 4] (beyond
// which erf is ±1 in float32): the rational minimax approximation of float erf that Eigen and XLA
// use, error < 5e-7. 1.6× faster than Abramowitz & Stegun 7.1.26 (a reciprocal, a polynomial and
// an exp) at the same accuracy; GELU's largest error is under 1e-6 for |v| ≤ 200. erf_terms
// gives z·P(z²) and Q(z²) for a clamped z; gelu16 divides them.
struct GeluTerms {
    Vec16 numerator, denominator;
};

[[gnu::always_inline]] inline GeluTerms erf_terms(Vec16 z) {
    const Vec16 z2 = z * z;
    Vec16 p = splat(-2.72614225801306e-10f);
    p = p * z2 + 2.77068142495902e-08f;
    p = p * z2 - 2.10102402082508e-06f;
    p = p * z2 - 5.69250639462346e-05f;
    p = p * z2 - 7.34990630326855e-04f;
    p = p * z2 - 2.95459980854025e-03f;
    p = p * z2 - 1.60960333262415e-02f;
    Vec16 q = splat(-1.45660718464996e-05f);
    q = q * z2 - 2.13374055278905e-04f;
    q = q * z2 - 1.68282697438203e-03f;
    q = q * z2 - 7.37332916720468e-03f;
    q = q * z2 - 1.42647390514189e-02f;
    return {z * p, q};
}

[[gnu::always_inline]] inline GeluTerms gelu_terms(Vec16 v) { return erf_terms(at_most(at_least(v * 0.70710678118654752440f, -4.0f), 4.0f)); }

[[gnu::always_inline]] inline Vec16 gelu16(Vec16 v) {
    const GeluTerms t = gelu_terms(v);
    return 0.5f * v * (1.0f + t.numerator / t.denominator);
}

// Applies a Vec16 → Vec16 function to x[0, count) in place; the ragged end goes through a
// zero-padded block.
template <typename F>
[[gnu::always_inline]] inline void map16(float* x, int64_t count, F f) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        Vec16 v;
        std::memcpy(&v, x + i, sizeof(v));
        v = f(v);
        std::memcpy(x + i, &v, sizeof(v));
    }
    if (i < count) {
        float block[16] = {};
        std::memcpy(block, x + i, (count - i) * sizeof(float));
        Vec16 v;
        std::memcpy(&v, block, sizeof(v));
        v = f(v);
        std::memcpy(block, &v, sizeof(v));
        std::memcpy(x + i, block, (count - i) * sizeof(float));
    }
}

struct Gelu16 {
    [[gnu::always_inline]] Vec16 operator()(Vec16 v) const { return gelu16(v); }
};

// x·sigmoid(1.702·x) = x / (1 + e^(−1.702·x)); exp16 clamps its argument,
// so a large |x| gives x or a value near 0.
struct QuickGelu16 {
    [[gnu::always_inline]] Vec16 operator()(Vec16 v) const { return v / (1.0f + exp16(-1.702f * v)); }
};

// Eight floats: the reductions below keep a running value per lane in one 32-byte register, whose
// comparisons GCC vectorizes on AVX2 (unlike those of Vec16), and fold the lanes once at the end;
// GCC does not vectorize a float max or sum on its own (that would reorder the operations).
typedef float Vec8 __attribute__((vector_size(32)));

// The largest of x[0, count), count ≥ 1.
[[gnu::always_inline]] inline float largest(const float* x, int64_t count) {
    Vec8 lanes = Vec8{} + x[0];
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        Vec8 v;
        std::memcpy(&v, x + i, sizeof(v));
        lanes = lanes > v ? lanes : v;
    }
    float result = x[0];
    for (int l = 0; l < 8; ++l) result = std::max(result, lanes[l]);
    for (; i < count; ++i) result = std::max(result, x[i]);
    return result;
}

// The sum of x[0, count).
[[gnu::always_inline]] inline float total(const float* x, int64_t count) {
    Vec8 lanes{};
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        Vec8 v;
        std::memcpy(&v, x + i, sizeof(v));
        lanes += v;
    }
    float result = 0;
    for (int l = 0; l < 8; ++l) result += lanes[l];
    for (; i < count; ++i) result += x[i];
    return result;
}

struct ShiftedExp16 {
    float shift;
    [[gnu::always_inline]] Vec16 operator()(Vec16 v) const { return exp16(v - shift); }
};

MCLIP_SIMD_CLONES
void gelu_vector(float* x, int64_t count) { map16(x, count, Gelu16{}); }

MCLIP_SIMD_CLONES
void quick_gelu_vector(float* x, int64_t count) { map16(x, count, QuickGelu16{}); }

// GELU on bf16 values: widened, computed in float32 and rounded back, 16 at a time.
MCLIP_SIMD_CLONES
void gelu_vector_bf16(uint16_t* x, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) narrow16(gelu16(widen16(x + i)), x + i);
    if (i < count) {
        uint16_t block[16] = {};
        std::memcpy(block, x + i, (count - i) * sizeof(uint16_t));
        narrow16(gelu16(widen16(block)), block);
        std::memcpy(x + i, block, (count - i) * sizeof(uint16_t));
    }
}

#if MCLIP_HAVE_TARGET_CLONES
// GELU on AVX-512, in fewer instructions: the clamp by vmaxps/vminps (at_least and at_most's
// bit operations exist for AVX2's sake), and the division (vdivps on 16 lanes issues once every
// 16 cycles or so) by rcp14's estimate (relative error < 2^-14) refined by one Newton step,
// r·(2 − q·r), within float32 rounding of 1/q. GELU was 13% of the S0 image encoder's bf16 time
// on the AMX Xeon. Every GELU on a CPU with AVX-512 takes this form, float32 and bf16 alike, so
// bf16 GELU stays float GELU rounded.
[[gnu::always_inline]] __attribute__((target("avx512f"))) inline Vec16 gelu16_by_reciprocal(Vec16 v) {
    const __m512 scaled = std::bit_cast<__m512>(v * 0.70710678118654752440f);
    const __m512 z = _mm512_maskz_min_ps(0xFFFF, _mm512_maskz_max_ps(0xFFFF, scaled, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const GeluTerms t = erf_terms(std::bit_cast<Vec16>(z));
    const Vec16 estimate = std::bit_cast<Vec16>(_mm512_maskz_rcp14_ps(0xFFFF, std::bit_cast<__m512>(t.denominator)));
    return 0.5f * v * (1.0f + t.numerator * (estimate * (2.0f - t.denominator * estimate)));
}

// (The ragged end by masked loads and stores.)
__attribute__((target("avx512f"))) void gelu_vector_avx512(float* x, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        const __mmask16 lanes = count - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - i)) - 1u);
        const Vec16 v = std::bit_cast<Vec16>(_mm512_maskz_loadu_ps(lanes, x + i));
        _mm512_mask_storeu_ps(x + i, lanes, std::bit_cast<__m512>(gelu16_by_reciprocal(v)));
    }
}

__attribute__((target("avx512f"))) void gelu_vector_bf16_avx512(uint16_t* x, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) narrow16(gelu16_by_reciprocal(widen16(x + i)), x + i);
    if (i < count) {
        uint16_t block[16] = {};
        std::memcpy(block, x + i, (count - i) * sizeof(uint16_t));
        narrow16(gelu16_by_reciprocal(widen16(block)), block);
        std::memcpy(x + i, block, (count - i) * sizeof(uint16_t));
    }
}

// With AVX512-BF16 one instruction (vcvtneps2bf16) does narrow16's work: the same rounding to
// nearest even and quiet NaNs, but denormal inputs (below 1.2e-38) become zero. Only where the
// vector code is built per instruction set: elsewhere gelu16 is built for the baseline, and
// inlined here it would contract to FMA and round differently from the float32 GELU (Clang
// refuses it anyway).
__attribute__((target("avx512f,avx512bf16"))) void gelu_vector_bf16_avx512bf16(uint16_t* x, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m256bh rounded = _mm512_cvtneps_pbh(std::bit_cast<__m512>(gelu16_by_reciprocal(widen16(x + i))));
        std::memcpy(x + i, &rounded, sizeof(rounded));
    }
    if (i < count) gelu_vector_bf16_avx512(x + i, count - i);
}

// bias_activation_to_bf16 in one pass, sixteen values at a time, rounded by vcvtneps2bf16.
__attribute__((target("avx512f,avx512bf16"))) void bias_activation_to_bf16_avx512bf16(const float* x, int rows, int cols, const float* bias,
                                                                                    bool gelu, uint16_t* y, int64_t y_stride) {
    for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < cols; j += 16) {
            Vec16 v, b;
            std::memcpy(&v, x + static_cast<int64_t>(r) * cols + j, sizeof(v));
            std::memcpy(&b, bias + j, sizeof(b));
            v += b;
            if (gelu) v = gelu16_by_reciprocal(v);
            const __m256bh rounded = _mm512_cvtneps_pbh(std::bit_cast<__m512>(v));
            std::memcpy(y + r * y_stride + j, &rounded, sizeof(rounded));
        }
    }
}
#endif

MCLIP_SIMD_CLONES
void convert_to_bf16(const float* x, uint16_t* y, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        Vec16 v;
        std::memcpy(&v, x + i, sizeof(v));
        narrow16(v, y + i);
    }
    for (; i < count; ++i) y[i] = round_to_bf16(x[i]);
}

MCLIP_SIMD_CLONES
void convert_from_bf16(const uint16_t* x, float* y, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const Vec16 v = widen16(x + i);
        std::memcpy(y + i, &v, sizeof(v));
    }
    for (; i < count; ++i) y[i] = widen_bf16(x[i]);
}

MCLIP_SIMD_CLONES
void accumulate_bf16(const float* x, uint16_t* y, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        Vec16 v;
        std::memcpy(&v, x + i, sizeof(v));
        narrow16(widen16(y + i) + v, y + i);
    }
    for (; i < count; ++i) y[i] = round_to_bf16(widen_bf16(y[i]) + x[i]);
}

MCLIP_SIMD_CLONES
void add_vector(float* y, const float* x, int64_t count) {
    for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

// Mean and variance of one row, in float with 16 independent partial sums (vectorizable; at
// these widths, ≤ 3072, the partial sums keep the rounding error near 1e-7 relative).
MCLIP_SIMD_CLONES
void row_statistics(const float* x, int64_t width, float& mean, float& variance) {
    constexpr int lanes = 16;
    float partial[lanes] = {};
    int64_t i = 0;
    for (; i + lanes <= width; i += lanes) {
        for (int l = 0; l < lanes; ++l) partial[l] += x[i + l];
    }
    float sum = 0;
    for (; i < width; ++i) sum += x[i];
    for (int l = 0; l < lanes; ++l) sum += partial[l];
    mean = sum / static_cast<float>(width);
    float squares[lanes] = {};
    i = 0;
    for (; i + lanes <= width; i += lanes) {
        for (int l = 0; l < lanes; ++l) {
            const float d = x[i + l] - mean;
            squares[l] += d * d;
        }
    }
    float total = 0;
    for (; i < width; ++i) total += (x[i] - mean) * (x[i] - mean);
    for (int l = 0; l < lanes; ++l) total += squares[l];
    variance = total / static_cast<float>(width);
}

MCLIP_SIMD_CLONES
void normalize_row(const float* x, int64_t width, float mean, float inv, const float* weight, const float* bias, float* y) {
    for (int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inv * weight[i] + bias[i];
}

// In-place softmax of the first `visible` entries of a row; the rest become 0 (a causal mask).
MCLIP_SIMD_CLONES
void softmax_row(float* x, int visible, int width) {
    map16(x, visible, ShiftedExp16{largest(x, visible)});
    const float inv = 1.0f / total(x, visible);
    for (int i = 0; i < visible; ++i) x[i] *= inv;
    for (int i = visible; i < width; ++i) x[i] = 0.0f;
}

MCLIP_SIMD_CLONES
void scale_row(float* x, int channels, const float* gates, bool gelu) {
    for (int c = 0; c < channels; ++c) x[c] *= gates[c];
    if (gelu) map16(x, channels, Gelu16{});
}

MCLIP_SIMD_CLONES
void accumulate_row(const float* x, int channels, float* sums) {
    for (int c = 0; c < channels; ++c) sums[c] += x[c];
}

// The float32 GELU loop for this CPU.
void (*gelu_loop())(float*, int64_t) {
#if MCLIP_HAVE_TARGET_CLONES
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return avx512 ? gelu_vector_avx512 : gelu_vector;
#else
    return gelu_vector;
#endif
}

}  // namespace

void bias_activation_to_bf16(const float* x, int rows, int cols, const float* bias, Activation activation, uint16_t* y, int64_t y_stride) {
    if (activation != Activation::none && activation != Activation::gelu) {
        throw Error(ErrorCode::internal, "bias_activation_to_bf16 takes GELU or no activation");
    }
#if MCLIP_HAVE_TARGET_CLONES
    static const bool avx512_bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    if (avx512_bf16 && cols % 16 == 0) {
        bias_activation_to_bf16_avx512bf16(x, rows, cols, bias, activation == Activation::gelu, y, y_stride);
        return;
    }
#endif
    thread_local std::vector<float> row;
    row.resize(cols);
    for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < cols; ++j) row[j] = x[static_cast<int64_t>(r) * cols + j] + bias[j];
        if (activation == Activation::gelu) gelu_loop()(row.data(), cols);
        convert_to_bf16(row.data(), y + r * y_stride, cols);
    }
}

void gelu_inplace(float* x, int64_t count) {
    ProfileScope scope("gelu");
    const auto gelu = gelu_loop();
    constexpr int64_t chunk = 16384;
#pragma omp parallel for schedule(static) if (count > kParallelThreshold)
    for (int64_t start = 0; start < count; start += chunk) gelu(x + start, std::min(chunk, count - start));
}

void quick_gelu_inplace(float* x, int64_t count) {
    ProfileScope scope("quick_gelu");
    constexpr int64_t chunk = 16384;
#pragma omp parallel for schedule(static) if (count > kParallelThreshold)
    for (int64_t start = 0; start < count; start += chunk) quick_gelu_vector(x + start, std::min(chunk, count - start));
}

void apply_activation_serial(Activation activation, float* x, int64_t count) {
    switch (activation) {
        case Activation::none: return;
        case Activation::relu:
            for (int64_t i = 0; i < count; ++i) x[i] = std::max(x[i], 0.0f);
            return;
        case Activation::gelu: gelu_loop()(x, count); return;
        case Activation::quick_gelu: quick_gelu_vector(x, count); return;
    }
}

void apply_activation(Activation activation, float* x, int64_t count) {
    switch (activation) {
        case Activation::gelu: gelu_inplace(x, count); return;
        case Activation::quick_gelu: quick_gelu_inplace(x, count); return;
        case Activation::none:
        case Activation::relu: apply_activation_serial(activation, x, count); return;
    }
}

void gelu_inplace_bf16(uint16_t* x, int64_t count) {
    ProfileScope scope("gelu");
#if MCLIP_HAVE_TARGET_CLONES
    static const bool avx512 = __builtin_cpu_supports("avx512f"), avx512_bf16 = __builtin_cpu_supports("avx512bf16");
    const auto gelu = avx512_bf16 ? gelu_vector_bf16_avx512bf16 : avx512 ? gelu_vector_bf16_avx512 : gelu_vector_bf16;
#else
    const auto gelu = gelu_vector_bf16;
#endif
    constexpr int64_t chunk = 16384;
#pragma omp parallel for schedule(static) if (count > kParallelThreshold)
    for (int64_t start = 0; start < count; start += chunk) gelu(x + start, std::min(chunk, count - start));
}

int8_t quantize_s8(float v, float inverse_step) {
    return static_cast<int8_t>(std::clamp(std::nearbyint(v * inverse_step), -128.0f, 127.0f));
}

std::vector<float> int8_inverse_steps(float range, const std::vector<float>& smoothing, int channels) {
    const float step = int8_step(range);
    if (smoothing.empty()) return std::vector<float>(channels, 1.0f / step);
    std::vector<float> inverses;
    for (float s : smoothing) inverses.push_back(1.0f / (step * s));
    return inverses;
}

void quantize_channels_s8(const void* x, DType x_type, int64_t positions, int channels, const float* inverse_steps, int8_t* y) {
    static const auto vectorized = avx512::cpu_supported() ? avx512::quantize_rows_s8 : avx2::cpu_supported() ? avx2::quantize_rows_s8 : nullptr;
    // Rows per task: enough work for each to be worth a thread.
    const int64_t rows_per_chunk = std::max<int64_t>(1, 16384 / std::max(channels, 1));
#pragma omp parallel for schedule(static) if (positions * channels > kParallelThreshold)
    for (int64_t start = 0; start < positions; start += rows_per_chunk) {
        const int64_t rows = std::min(rows_per_chunk, positions - start);
        const int64_t offset = start * channels;
        if (vectorized) {
            vectorized(x_type == DType::bf16, static_cast<const char*>(x) + offset * dtype_size(x_type), rows, channels, inverse_steps,
                       y + offset);
            continue;
        }
        for (int64_t i = 0; i < rows * channels; ++i) {
            const int64_t at = offset + i;
            const float v = x_type == DType::bf16 ? widen_bf16(static_cast<const uint16_t*>(x)[at]) : static_cast<const float*>(x)[at];
            y[at] = quantize_s8(v, inverse_steps[i % channels]);
        }
    }
}

RowQuantized quantize_rows_s8(const float* w, int64_t rows, int64_t cols, bool even_levels) {
    RowQuantized q;
    q.values.resize(rows * cols);
    q.steps.resize(rows);
    // Even levels: w quantized with twice the step onto [−63, 63], then doubled.
    const int spacing = even_levels ? 2 : 1;
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = w + r * cols;
        float largest = 0;
        for (int64_t c = 0; c < cols; ++c) largest = std::max(largest, std::fabs(row[c]));
        const float step = largest > 0 ? largest / static_cast<float>(127 / spacing) : 1.0f;
        q.steps[r] = largest > 0 ? step / static_cast<float>(spacing) : 1.0f;
        const float inverse = 1.0f / step;
        for (int64_t c = 0; c < cols; ++c) q.values[r * cols + c] = static_cast<int8_t>(spacing * quantize_s8(row[c], inverse));
    }
    return q;
}

Tensor smooth_input_channels(const Tensor& weight, const std::vector<float>& smoothing) {
    Tensor smoothed = weight.to_f32().clone();
    const int64_t outputs = weight.dim(0), factors = static_cast<int64_t>(smoothing.size());
    // Depthwise weights [out, 1, ...]: output channel o reads input channel o / (out / in).
    const bool depthwise = weight.dim(1) == 1 && factors > 1 && outputs % factors == 0;
    if (!depthwise && factors != weight.dim(1)) {
        throw Error(ErrorCode::internal, "smoothing factors for " + std::to_string(factors) + " input channels, the weights have " +
                                             std::to_string(weight.dim(1)));
    }
    const int64_t per_output = weight.elements() / outputs;    // one output channel's weights
    const int64_t per_input = per_output / weight.dim(1);       // kernel positions per input channel
    float* w = smoothed.f32();
    for (int64_t i = 0; i < smoothed.elements(); ++i) {
        w[i] *= smoothing[depthwise ? i / per_output / (outputs / factors) : i / per_input % factors];
    }
    return smoothed;
}

void add_inplace(float* y, const float* x, int64_t count) { add_vector(y, x, count); }

void f32_to_bf16(const float* x, uint16_t* y, int64_t count) { convert_to_bf16(x, y, count); }
void bf16_to_f32(const uint16_t* x, float* y, int64_t count) { convert_from_bf16(x, y, count); }

void store_f32(const float* values, int64_t count, void* y, DType y_type, bool accumulate) {
    if (y_type == DType::f32) {
        float* yf = static_cast<float*>(y);
        if (accumulate) {
            add_vector(yf, values, count);
        } else if (yf != values) {
            std::copy(values, values + count, yf);
        }
        return;
    }
    uint16_t* yb = static_cast<uint16_t*>(y);
    if (accumulate) {
        accumulate_bf16(values, yb, count);
    } else {
        convert_to_bf16(values, yb, count);
    }
}

void layer_norm(const float* x, int64_t rows, int64_t width, const float* weight, const float* bias, float eps, void* y,
                DType y_type) {
    ProfileScope scope("layer norm");
#pragma omp parallel if (rows * width > kParallelThreshold)
    {
        thread_local std::vector<float> row;
        row.resize(width);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            float mean, variance;
            row_statistics(x + r * width, width, mean, variance);
            const float inv = 1.0f / std::sqrt(variance + eps);
            if (y_type == DType::bf16) {
                normalize_row(x + r * width, width, mean, inv, weight, bias, row.data());
                convert_to_bf16(row.data(), static_cast<uint16_t*>(y) + r * width, width);
            } else {
                normalize_row(x + r * width, width, mean, inv, weight, bias, static_cast<float*>(y) + r * width);
            }
        }
    }
}

void multi_head_attention(const float* qkv, int length, int heads, int head_dim, bool causal, float* out) {
    ProfileScope scope("attention");
    const int width = heads * head_dim;
    const int64_t stride = 3 * static_cast<int64_t>(width);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const int64_t l = length;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads; ++h) {
        // Per thread: q_h·scale [L, d], k_hᵀ [d, L] and the scores [L, L].
        thread_local std::vector<float> query, keys, scores;
        query.resize(l * head_dim);
        keys.resize(l * head_dim);
        scores.resize(l * l);
        // The reference scales q before the product: (q·scale)·kᵀ.
        for (int64_t i = 0; i < l; ++i) {
            const float* q = qkv + i * stride + h * head_dim;
            const float* k = qkv + i * stride + width + h * head_dim;
            for (int d = 0; d < head_dim; ++d) {
                query[i * head_dim + d] = q[d] * scale;
                keys[d * l + i] = k[d];
            }
        }
        reference::gemm(l, l, head_dim, query.data(), head_dim, keys.data(), l, scores.data(), l, false);
        for (int64_t i = 0; i < l; ++i) softmax_row(scores.data() + i * l, causal ? static_cast<int>(i) + 1 : length, length);
        reference::gemm(l, head_dim, l, scores.data(), l, qkv + 2 * width + h * head_dim, stride, out + h * head_dim, width, false);
    }
}

void attention_softmax(float* scores, int64_t groups, int length, bool causal, void* p, DType p_type) {
    ProfileScope scope("softmax");
    const int64_t rows = groups * length;
#pragma omp parallel for schedule(static) if (rows * length > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
        float* row = scores + r * length;
        softmax_row(row, causal ? static_cast<int>(r % length) + 1 : length, length);
        if (p_type == DType::bf16) {
            convert_to_bf16(row, static_cast<uint16_t*>(p) + r * length, length);
        } else if (p != scores) {
            std::copy(row, row + length, static_cast<float*>(p) + r * length);
        }
    }
}

void global_average_pool(const float* x, int64_t spatial, int channels, float* out) {
    ProfileScope scope("pool");
    thread_local std::vector<float> sums;
    sums.assign(channels, 0.0f);
    for (int64_t s = 0; s < spatial; ++s) accumulate_row(x + s * channels, channels, sums.data());
    const float inv = 1.0f / static_cast<float>(spatial);
    for (int c = 0; c < channels; ++c) out[c] = sums[c] * inv;
}

void squeeze_excite_gates(const float* pooled, int channels, const float* w1, const float* b1, int reduced,
                          const float* w2, const float* b2, float* gates) {
    thread_local std::vector<float> hidden;
    hidden.resize(reduced);
    for (int r = 0; r < reduced; ++r) {
        float s = b1[r];
        for (int c = 0; c < channels; ++c) s += w1[static_cast<int64_t>(r) * channels + c] * pooled[c];
        hidden[r] = std::max(s, 0.0f);
    }
    for (int c = 0; c < channels; ++c) {
        float s = b2[c];
        for (int r = 0; r < reduced; ++r) s += w2[static_cast<int64_t>(c) * reduced + r] * hidden[r];
        gates[c] = 1.0f / (1.0f + std::exp(-s));
    }
}

void scale_channels(float* x, int64_t spatial, int channels, const float* gates, bool gelu) {
    ProfileScope scope("channel scale");
#pragma omp parallel for schedule(static) if (spatial * channels > kParallelThreshold)
    for (int64_t s = 0; s < spatial; ++s) scale_row(x + s * channels, channels, gates, gelu);
}

void matmul_in_out(const float* x, int64_t rows, int64_t in, const float* p, int64_t out, float* y) {
    reference::gemm(rows, out, in, x, in, p, out, y, out, false);
}

void nchw_to_nhwc(const float* x, int n, int c, int h, int w, float* y) {
    const int64_t spatial = static_cast<int64_t>(h) * w;
#pragma omp parallel for collapse(2) schedule(static) if (n * spatial * c > kParallelThreshold)
    for (int b = 0; b < n; ++b) {
        for (int64_t s = 0; s < spatial; ++s) {
            const float* xb = x + b * c * spatial;
            float* yp = y + (b * spatial + s) * c;
            for (int ch = 0; ch < c; ++ch) yp[ch] = xb[ch * spatial + s];
        }
    }
}

void nhwc_to_nchw(const float* x, int n, int c, int h, int w, float* y) {
    const int64_t spatial = static_cast<int64_t>(h) * w;
#pragma omp parallel for collapse(2) schedule(static) if (n * spatial * c > kParallelThreshold)
    for (int b = 0; b < n; ++b) {
        for (int ch = 0; ch < c; ++ch) {
            const float* xb = x + b * c * spatial;
            float* yc = y + (static_cast<int64_t>(b) * c + ch) * spatial;
            for (int64_t s = 0; s < spatial; ++s) yc[s] = xb[s * c + ch];
        }
    }
}

}  // namespace mclip::kernels
