// PIL's Resample.c for 8-bit images, restated: every floating-point step happens in the same
// order and precision as Pillow's, so the integer weights, and hence the pixels, are identical.
#include "image/resample.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "common/error.h"
#include "common/target_clones.h"

namespace mclip::image_detail {

namespace {

// Triangle: 1 - |x| on (-1, 1).
double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

// Keys' cubic convolution with a = -0.5, support 2.
double bicubic_filter(double x) {
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// The vertical pass's loop is compiled for several instruction sets and picked at load time:
// 32-bit multiplies of widened bytes vectorize well with AVX2 and AVX-512 but poorly with SSE2.
#define MCLIP_RESAMPLE_CLONES MCLIP_TARGET_CLONES("avx512f", "avx2", "default")

inline uint8_t clip_to_byte(int32_t sum) {
    const int32_t v = sum >> kWeightBits;  // arithmetic shift; sums may be negative with bicubic
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

int centered_offset(int excess) {
    const int half = excess / 2;
    if (excess % 2 == 0) return half;
    return half % 2 == 0 ? half : half + 1;  // excess / 2.0 = half + 0.5: round to the even one
}

CropGeometry crop_geometry(int width, int height, const PreprocessParams& params) {
    if (width < 1 || height < 1) {
        throw Error(ErrorCode::invalid_argument,
                    "cannot preprocess an empty image (" + std::to_string(width) + "x" + std::to_string(height) + ")");
    }
    const int target = params.resize_size > 0 ? params.resize_size : params.size;
    CropGeometry g{target, target, 0, 0};
    if (params.resize_mode == ResizeMode::shorter_side) {
        const int64_t shorter = std::min(width, height), longer = std::max(width, height);
        // Python: int(target * long / short), a true division of exact integers, truncated.
        const double scaled = static_cast<double>(int64_t{target} * longer) / static_cast<double>(shorter);
        if (scaled >= static_cast<double>(INT_MAX)) {
            throw Error(ErrorCode::invalid_argument, "image of " + std::to_string(width) + "x" + std::to_string(height) +
                                                         " is too elongated to resize");
        }
        const int resized_long = static_cast<int>(scaled);
        if (width <= height) {
            g.resized_height = resized_long;
        } else {
            g.resized_width = resized_long;
        }
    }
    g.left = centered_offset(g.resized_width - params.size);
    g.top = centered_offset(g.resized_height - params.size);
    return g;
}

AxisWeights compute_axis_weights(int in_size, int out_size, int first, int count, Interpolation interpolation) {
    const bool bicubic = interpolation == Interpolation::bicubic;
    const double filter_support = bicubic ? 2.0 : 1.0;
    // Pillow passes the source extent as a float box, so sizes above 2^24 round as floats do.
    const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
    // Shrinking widens the filter by the scale (antialiasing); enlarging keeps it.
    const double filter_scale = std::max(scale, 1.0);
    const double support = filter_support * filter_scale;
    const double inverse_filter_scale = 1.0 / filter_scale;
    AxisWeights w;
    w.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
    w.start.resize(count);
    w.count.resize(count);
    w.weights.assign(static_cast<size_t>(count) * w.taps, 0);
    std::vector<double> k(w.taps);
    for (int i = 0; i < count; ++i) {
        const int out = first + i;
        const double center = (out + 0.5) * scale;
        // int() truncates toward zero, as C's conversion in Pillow does.
        const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
        const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
        const int n = hi - lo;
        double sum = 0.0;
        for (int t = 0; t < n; ++t) {
            k[t] = bicubic ? bicubic_filter((t + lo - center + 0.5) * inverse_filter_scale)
                           : bilinear_filter((t + lo - center + 0.5) * inverse_filter_scale);
            sum += k[t];
        }
        int32_t* fixed = w.weights.data() + static_cast<size_t>(i) * w.taps;
        for (int t = 0; t < n; ++t) {
            const double normalized = sum != 0.0 ? k[t] / sum : k[t];
            const double scaled = normalized * (1 << kWeightBits);
            fixed[t] = static_cast<int32_t>(normalized < 0 ? -0.5 + scaled : 0.5 + scaled);
        }
        w.start[i] = lo;
        w.count[i] = n;
    }
    return w;
}

namespace {

// One output row of the horizontal pass, three channels at a time.
void resample_one_row(const uint8_t* in_row, const AxisWeights& weights, uint8_t* out_row) {
    constexpr int32_t half = 1 << (kWeightBits - 1);
    const int outputs = static_cast<int>(weights.start.size());
    for (int j = 0; j < outputs; ++j) {
        const uint8_t* p = in_row + static_cast<size_t>(weights.start[j]) * 3;
        const int32_t* k = weights.weights.data() + static_cast<size_t>(j) * weights.taps;
        const int n = weights.count[j];
        int32_t r = half, g = half, b = half;
        for (int t = 0; t < n; ++t) {
            r += p[3 * t + 0] * k[t];
            g += p[3 * t + 1] * k[t];
            b += p[3 * t + 2] * k[t];
        }
        out_row[3 * j + 0] = clip_to_byte(r);
        out_row[3 * j + 1] = clip_to_byte(g);
        out_row[3 * j + 2] = clip_to_byte(b);
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define MCLIP_HAVE_AVX2_KERNEL 1

int32_t load_4_bytes(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Four rows of the horizontal pass at once. Each tap loads 4 bytes per row (a pixel and the next
// byte), widens the 16 bytes to 16 int32 lanes (R, G, B, unused per row) and adds lanes times
// the weight: the same integer sums as resample_one_row, with a third of its instructions.
// Reads one byte past each pixel it uses.
__attribute__((target("avx2"))) void resample_four_rows_avx2(const uint8_t* const rows[4], const AxisWeights& weights,
                                                             uint8_t* const out[4]) {
    const __m256i half = _mm256_set1_epi32(1 << (kWeightBits - 1));
    const __m256i zero = _mm256_setzero_si256();
    const __m256i max_byte = _mm256_set1_epi32(255);
    const int outputs = static_cast<int>(weights.start.size());
    for (int j = 0; j < outputs; ++j) {
        const size_t offset = static_cast<size_t>(weights.start[j]) * 3;
        const int32_t* k = weights.weights.data() + static_cast<size_t>(j) * weights.taps;
        const int n = weights.count[j];
        __m256i rows01 = half, rows23 = half;
        for (int t = 0; t < n; ++t) {
            const size_t at = offset + 3 * static_cast<size_t>(t);
            const __m128i pixels = _mm_setr_epi32(load_4_bytes(rows[0] + at), load_4_bytes(rows[1] + at),
                                                  load_4_bytes(rows[2] + at), load_4_bytes(rows[3] + at));
            const __m256i weight = _mm256_set1_epi32(k[t]);
            rows01 = _mm256_add_epi32(rows01, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(pixels), weight));
            rows23 = _mm256_add_epi32(rows23, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(pixels, 8)), weight));
        }
        alignas(32) int32_t clipped[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(clipped),
                           _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(rows01, kWeightBits), zero), max_byte));
        _mm256_store_si256(reinterpret_cast<__m256i*>(clipped + 8),
                           _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(rows23, kWeightBits), zero), max_byte));
        for (int r = 0; r < 4; ++r) {
            uint8_t* pixel = out[r] + 3 * static_cast<size_t>(j);
            pixel[0] = static_cast<uint8_t>(clipped[4 * r + 0]);
            pixel[1] = static_cast<uint8_t>(clipped[4 * r + 1]);
            pixel[2] = static_cast<uint8_t>(clipped[4 * r + 2]);
        }
    }
}
#endif

}  // namespace

void resample_rows(const uint8_t* in, size_t in_stride, int count, bool ends_buffer, const AxisWeights& weights,
                   uint8_t* out, size_t out_stride, Simd simd) {
    int y = 0;
#ifdef MCLIP_HAVE_AVX2_KERNEL
    // The kernel reads one byte past a pixel: never in the buffer's last row.
    const int vector_rows = ends_buffer ? count - 1 : count;
    if (simd == Simd::best && __builtin_cpu_supports("avx2")) {
        for (; y + 4 <= vector_rows; y += 4) {
            const uint8_t* rows[4];
            uint8_t* outs[4];
            for (int r = 0; r < 4; ++r) {
                rows[r] = in + static_cast<size_t>(y + r) * in_stride;
                outs[r] = out + static_cast<size_t>(y + r) * out_stride;
            }
            resample_four_rows_avx2(rows, weights, outs);
        }
    }
#endif
    for (; y < count; ++y) {
        resample_one_row(in + static_cast<size_t>(y) * in_stride, weights, out + static_cast<size_t>(y) * out_stride);
    }
}

namespace {

// Internal linkage: GCC gives the dispatcher of target_clones functions default visibility
// whatever -fvisibility and attributes say, so an external one would be exported by libmclip.so.
MCLIP_RESAMPLE_CLONES void resample_column_row_clones(const uint8_t* source, size_t stride, int first_row,
                                                      const AxisWeights& weights, int output, int channels,
                                                      int32_t* accumulator, uint8_t* out_row) {
    constexpr int32_t half = 1 << (kWeightBits - 1);
    std::fill(accumulator, accumulator + channels, half);
    const int32_t* k = weights.weights.data() + static_cast<size_t>(output) * weights.taps;
    const int n = weights.count[output];
    for (int t = 0; t < n; ++t) {
        const uint8_t* row = source + static_cast<size_t>(weights.start[output] + t - first_row) * stride;
        const int32_t weight = k[t];
        for (int c = 0; c < channels; ++c) accumulator[c] += row[c] * weight;
    }
    for (int c = 0; c < channels; ++c) out_row[c] = clip_to_byte(accumulator[c]);
}

}  // namespace

void resample_column_row(const uint8_t* source, size_t stride, int first_row, const AxisWeights& weights, int output,
                         int channels, int32_t* accumulator, uint8_t* out_row) {
    resample_column_row_clones(source, stride, first_row, weights, output, channels, accumulator, out_row);
}

}  // namespace mclip::image_detail
