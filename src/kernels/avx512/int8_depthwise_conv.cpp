#include "kernels/avx512/int8_depthwise_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/avx512/vectors.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

constexpr int kColumns = 8;    // output columns computed together
constexpr int kMaxKernel = 11;
constexpr int32_t kZeroPoint = 128;  // of the unsigned input bytes vpdpbusd takes
// Four zero-point bytes: the quad of four input columns outside the image.
constexpr int32_t kPaddingQuad = static_cast<int32_t>(0x80808080u);

int divide_up(int n, int d) { return (n + d - 1) / d; }

// levels: each value as the int8 level the next layer would quantize it to, plus 128, one byte
// (make_int8_depthwise_conv2d_to_levels); bf16_levels: the same of the value rounded to bf16.
enum class Store { f32, f32_add, bf16, levels, bf16_levels };

// The layer's constants, per channel padded to whole blocks of 16.
struct Packed {
    int channels = 0, blocks = 0;
    int kernel_h = 0, kernel_w = 0, quads = 0, pad_h = 0, pad_w = 0;
    std::vector<int32_t> weights;          // [kernel_h][quads][blocks·16]: taps 4q..4q+3 of a row, one byte each
    std::vector<int32_t> zero_point_sums;  // −128·Σ of a channel's quantized weights
    std::vector<float> inverse_steps;      // x_c ↦ its int8 level
    std::vector<float> scales;             // int32 sum ↦ value: the input's step × the channel's weight step
    std::vector<float> centre;             // the centre tap's float32 weight
    std::vector<float> bias;
    std::vector<float> output_inverse_steps;  // Store::levels: the next layer's input quantization
    int stride() const { return blocks * kLanes; }
};

// One input row of a block's channels (`source`: column 0, the block's first channel; `column`
// elements from one column to the next) as quads: entry e holds, in lane c, the unsigned levels
// of input columns i..i+3 (i = e − pad_w; the byte of column i lowest), 128 outside the image.
// Built from the right: quad(i) = quad(i + 1) << 8 | level(i).
template <typename In>
MCLIP_AVX512 void build_quads(const In* source, int64_t column, int w, int pad_w, int entries, __mmask16 lanes, __m512 inverse,
                              int32_t* quads) {
    const __m512 low = _mm512_set1_ps(-128.0f), high = _mm512_set1_ps(127.0f);
    const __m512i zero_point = _mm512_set1_epi32(kZeroPoint);
    __m512i carry = _mm512_set1_epi32(kPaddingQuad);
    for (int i = entries - pad_w + 2; i >= -pad_w; --i) {
        __m512i level = zero_point;
        if (i >= 0 && i < w) {
            // Clamped before the conversion, as quantize_s8 (ops.h) does; a NaN becomes −128.
            const __m512 scaled = _mm512_mul_ps(load16(source + i * column, lanes), inverse);
            const __m512 clamped = _mm512_maskz_min_ps(kAllLanes, _mm512_maskz_max_ps(kAllLanes, scaled, low), high);
            level = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAllLanes, clamped), zero_point);
        }
        carry = _mm512_or_si512(_mm512_maskz_slli_epi32(kAllLanes, carry, 8), level);
        if (i + pad_w < entries) _mm512_store_si512(quads + static_cast<int64_t>(i + pad_w) * kLanes, carry);
    }
}

// Each value's bf16 bit pattern in the low half of its lane: rounded to nearest even and a NaN
// kept a (quiet) NaN, as ops.h's conversions do.
MCLIP_AVX512 inline __m512i bf16_bits(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_maskz_srli_epi32(kAllLanes, bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(_mm512_maskz_srli_epi32(kAllLanes, rounded, 16), nan, _mm512_set1_epi32(0x7FC0));
}

// `inverse`: the next layer's inverse steps, for Store::levels and bf16_levels, whose levels are
// quantize_s8's (ops.h): the same scaling, clamping and rounding, a NaN to −128.
template <Store S>
MCLIP_AVX512 inline void store16(void* y, int64_t at, __mmask16 lanes, __m512 v, __m512 inverse) {
    if constexpr (S == Store::f32) {
        _mm512_mask_storeu_ps(static_cast<float*>(y) + at, lanes, v);
    } else if constexpr (S == Store::f32_add) {
        float* out = static_cast<float*>(y) + at;
        _mm512_mask_storeu_ps(out, lanes, _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, out)));
    } else if constexpr (S == Store::bf16) {
        _mm512_mask_cvtepi32_storeu_epi16(static_cast<uint16_t*>(y) + at, lanes, bf16_bits(v));
    } else {
        const __m512 value = S == Store::bf16_levels ? _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAllLanes, bf16_bits(v), 16)) : v;
        const __m512 scaled = _mm512_mul_ps(value, inverse);
        const __m512 clamped = _mm512_maskz_min_ps(kAllLanes, _mm512_maskz_max_ps(kAllLanes, scaled, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
        const __m512i levels = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAllLanes, clamped), _mm512_set1_epi32(kZeroPoint));
        _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(y) + at, lanes, levels);
    }
}

// Adds one quad row's products into the sums of output row 0 (First: kernel row weights0) and
// of output row 1 (Second: kernel row weights1), columns [0, kColumns) from `quads` on: each quad
// loaded once serves both rows (512-bit loads, more than the products, limit the kernel on Zen 5).
template <int Quads, bool First, bool Second>
MCLIP_AVX512_VNNI inline void accumulate(const int32_t* quads, const int32_t* weights0, const int32_t* weights1, int64_t weight_stride,
                                         __m512i* sums0, __m512i* sums1) {
#pragma GCC unroll 3
    for (int q = 0; q < Quads; ++q) {
        const __m512i w0 = First ? _mm512_loadu_si512(weights0 + q * weight_stride) : _mm512_setzero_si512();
        const __m512i w1 = Second ? _mm512_loadu_si512(weights1 + q * weight_stride) : _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < kColumns; ++j) {
            const __m512i inputs = _mm512_load_si512(quads + (j + 4 * q) * kLanes);
            if constexpr (First) sums0[j] = _mm512_dpbusd_epi32(sums0[j], inputs, w0);
            if constexpr (Second) sums1[j] = _mm512_dpbusd_epi32(sums1[j], inputs, w1);
        }
    }
}

// The int32 sums of output row oh and, with Rows = 2, oh + 1, over columns [ow, ow + kColumns)
// of one channel block into sums[Rows][kColumns]: `rows` are the quad rows of input rows
// oh − pad_h .. oh − pad_h + kernel_h + Rows − 2, `weights` the block's first lane in
// Packed::weights. Not inlined: on its own the sums keep their registers (inlined into the row
// loop, GCC 12 moved the weights to the stack and read them back for every product).
template <int Quads, int Rows>
[[gnu::noinline]] MCLIP_AVX512_VNNI void tile_sums(const int32_t* const* rows, int kernel_h, int64_t offset, const int32_t* weights,
                                                   int64_t weight_stride, const int32_t* zero_point_sums, __m512i* sums) {
    __m512i sums0[kColumns], sums1[kColumns];
    const __m512i start = _mm512_loadu_si512(zero_point_sums);
#pragma GCC unroll 8
    for (int j = 0; j < kColumns; ++j) sums0[j] = sums1[j] = start;
    const int64_t row_weights = Quads * weight_stride;
    if constexpr (Rows == 1) {
        for (int t = 0; t < kernel_h; ++t) {
            accumulate<Quads, true, false>(rows[t] + offset, weights + t * row_weights, nullptr, weight_stride, sums0, sums1);
        }
    } else {
        accumulate<Quads, true, false>(rows[0] + offset, weights, nullptr, weight_stride, sums0, sums1);
        for (int t = 1; t < kernel_h; ++t) {
            accumulate<Quads, true, true>(rows[t] + offset, weights + t * row_weights, weights + (t - 1) * row_weights, weight_stride, sums0,
                                          sums1);
        }
        accumulate<Quads, false, true>(rows[kernel_h] + offset, nullptr, weights + (kernel_h - 1) * row_weights, weight_stride, sums0,
                                       sums1);
    }
#pragma GCC unroll 8
    for (int j = 0; j < kColumns; ++j) {
        sums[j] = sums0[j];
        if constexpr (Rows == 2) sums[kColumns + j] = sums1[j];
    }
}

// Output rows [oh_begin, oh_end) of one image's channel block. `ring` holds kernel_h + 1 quad
// rows (row ih in slot ih mod (kernel_h + 1), each built once), `padding` a quad row of
// zero-point bytes; both 64-byte aligned.
template <int Quads, typename In, Store S>
MCLIP_AVX512_VNNI void conv_rows(const Packed& p, const In* image, int h, int w, int block, int oh_begin, int oh_end, void* y,
                                 int32_t* ring, const int32_t* padding) {
    const int c0 = block * kLanes;
    const int64_t column = p.channels, row_stride = static_cast<int64_t>(w) * column;
    const int entries = divide_up(w, kColumns) * kColumns + 4 * (Quads - 1);
    const int64_t row_size = static_cast<int64_t>(entries) * kLanes;
    const int slots = p.kernel_h + 1;
    const __mmask16 lanes = lanes_from(c0, p.channels);
    const __m512 inverse = _mm512_loadu_ps(p.inverse_steps.data() + c0);
    const __m512 scale = _mm512_loadu_ps(p.scales.data() + c0);
    const __m512 bias = _mm512_loadu_ps(p.bias.data() + c0);
    const __m512 centre = _mm512_loadu_ps(p.centre.data() + c0);
    const __m512 output_inverse = S == Store::levels || S == Store::bf16_levels ? _mm512_loadu_ps(p.output_inverse_steps.data() + c0) : _mm512_setzero_ps();
    auto quad_row = [&](int ih) { return ring + (ih % slots) * row_size; };
    const int32_t* rows[kMaxKernel + 1];
    __m512i sums[2 * kColumns];
    int next = std::max(0, oh_begin - p.pad_h);  // the next input row to build
    for (int oh = oh_begin; oh < oh_end; oh += 2) {
        const int pair = oh + 1 < oh_end ? 1 : 0;
        for (const int last = std::min(h - 1, oh + pair + p.pad_h); next <= last; ++next) {
            build_quads(image + next * row_stride + c0, column, w, p.pad_w, entries, lanes, inverse, quad_row(next));
        }
        for (int t = 0; t < p.kernel_h + pair; ++t) {
            const int ih = oh - p.pad_h + t;
            rows[t] = ih < 0 || ih >= h ? padding : quad_row(ih);
        }
        for (int ow = 0; ow < w; ow += kColumns) {
            const int64_t offset = static_cast<int64_t>(ow) * kLanes;
            if (pair) {
                tile_sums<Quads, 2>(rows, p.kernel_h, offset, p.weights.data() + c0, p.stride(), p.zero_point_sums.data() + c0, sums);
            } else {
                tile_sums<Quads, 1>(rows, p.kernel_h, offset, p.weights.data() + c0, p.stride(), p.zero_point_sums.data() + c0, sums);
            }
            const int count = std::min(kColumns, w - ow);
            for (int i = 0; i <= pair; ++i) {
                const int64_t at = (oh + i) * row_stride + c0 + static_cast<int64_t>(ow) * column;
                for (int j = 0; j < count; ++j) {
                    const int64_t position = at + static_cast<int64_t>(j) * column;
                    const __m512 sum = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAllLanes, sums[i * kColumns + j]), scale, bias);
                    store16<S>(y, position, lanes, _mm512_fmadd_ps(load16(image + position, lanes), centre, sum), output_inverse);
                }
            }
        }
    }
}

using RowsFunction = void (*)(const Packed&, const void*, int, int, int, int, int, void*, int32_t*, const int32_t*);

template <int Quads, typename In, Store S>
void rows_adapter(const Packed& p, const void* image, int h, int w, int block, int oh_begin, int oh_end, void* y, int32_t* ring,
                  const int32_t* padding) {
    conv_rows<Quads, In, S>(p, static_cast<const In*>(image), h, w, block, oh_begin, oh_end, y, ring, padding);
}

template <int Quads, typename In>
RowsFunction rows_function_for(const ConvDesc& d, bool levels) {
    if (levels) return d.output == DType::bf16 ? rows_adapter<Quads, In, Store::bf16_levels> : rows_adapter<Quads, In, Store::levels>;
    if (d.output == DType::bf16) return rows_adapter<Quads, In, Store::bf16>;
    return d.accumulate ? rows_adapter<Quads, In, Store::f32_add> : rows_adapter<Quads, In, Store::f32>;
}

template <int Quads>
RowsFunction rows_function_for(const ConvDesc& d, bool levels) {
    return d.input == DType::bf16 ? rows_function_for<Quads, uint16_t>(d, levels) : rows_function_for<Quads, float>(d, levels);
}

RowsFunction rows_function(const ConvDesc& d, bool levels) {
    return divide_up(d.kernel_w, 4) == 2 ? rows_function_for<2>(d, levels) : rows_function_for<3>(d, levels);
}

class Int8DepthwiseConv2d final : public Conv2d {
public:
    // With output_inverse_steps, y receives the levels of the output (Store::levels).
    Int8DepthwiseConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias, const std::vector<float>& output_inverse_steps = {})
        : Conv2d(desc), rows_(rows_function(desc, !output_inverse_steps.empty())),
          out_element_(output_inverse_steps.empty() ? dtype_size(desc.output) : 1) {
        Packed& p = packed_;
        p.channels = desc.out_channels;
        p.blocks = divide_up(p.channels, kLanes);
        p.kernel_h = desc.kernel_h;
        p.kernel_w = desc.kernel_w;
        p.quads = divide_up(desc.kernel_w, 4);
        p.pad_h = desc.pad_h;
        p.pad_w = desc.pad_w;
        const int taps = desc.kernel_h * desc.kernel_w, centre_tap = desc.pad_h * desc.kernel_w + desc.pad_w;
        const Tensor plain = weight.to_f32();
        const Tensor smoothed = desc.input_smoothing.empty() ? plain : smooth_input_channels(plain, desc.input_smoothing);
        std::vector<float> off_centre(smoothed.f32(), smoothed.f32() + smoothed.elements());
        for (int c = 0; c < p.channels; ++c) off_centre[static_cast<size_t>(c) * taps + centre_tap] = 0.0f;
        const RowQuantized q = quantize_rows_s8(off_centre.data(), p.channels, taps);
        const std::vector<float> inverses = int8_inverse_steps(desc.input_range, desc.input_smoothing, p.channels);
        const size_t stride = p.stride();
        p.weights.assign(static_cast<size_t>(p.kernel_h) * p.quads * stride, 0);
        p.zero_point_sums.assign(stride, 0);
        p.inverse_steps.assign(stride, 0.0f);
        p.scales.assign(stride, 0.0f);
        p.centre.assign(stride, 0.0f);
        p.bias.assign(stride, 0.0f);
        p.output_inverse_steps = output_inverse_steps;
        p.output_inverse_steps.resize(output_inverse_steps.empty() ? 0 : stride, 0.0f);
        const Tensor b = bias.empty() ? Tensor() : bias.to_f32();
        for (int c = 0; c < p.channels; ++c) {
            int32_t sum = 0;
            for (int r = 0; r < p.kernel_h; ++r) {
                for (int k = 0; k < p.kernel_w; ++k) {
                    const int8_t level = q.values[static_cast<size_t>(c) * taps + r * p.kernel_w + k];
                    auto* bytes = reinterpret_cast<int8_t*>(&p.weights[(static_cast<size_t>(r) * p.quads + k / 4) * stride + c]);
                    bytes[k % 4] = level;
                    sum += level;
                }
            }
            p.zero_point_sums[c] = -kZeroPoint * sum;
            p.inverse_steps[c] = inverses[c];
            p.scales[c] = int8_step(desc.input_range) * q.steps[c];
            p.centre[c] = plain.f32()[static_cast<size_t>(c) * taps + centre_tap];
            if (!b.empty()) p.bias[c] = b.f32()[c];
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const Packed& p = packed_;
        const int threads = num_threads();
        // Items are (image, band of rows, channel block), band by band, with one band per thread
        // when there are fewer images than threads: each thread then reads and writes whole rows,
        // as the layers around this one split them, and the activations stay in its own core's
        // cache. Split by channel blocks (as from 32×32 on before), half of each row crossed to
        // the other core on the way in and again on the way out (docs/performance.md has the
        // measurements). Each band rebuilds the quad rows of its halo.
        const int bands_wanted = std::clamp(divide_up(threads, n), 1, h);
        const int band_rows = divide_up(h, bands_wanted);
        const int bands = divide_up(h, band_rows);
        const int64_t items = static_cast<int64_t>(n) * bands * p.blocks;
        const int64_t work = static_cast<int64_t>(n) * h * w * p.channels * p.kernel_h * p.kernel_w;
        const int entries = divide_up(w, kColumns) * kColumns + 4 * (p.quads - 1);
        const size_t row_size = static_cast<size_t>(entries) * kLanes;
        const int64_t image_values = static_cast<int64_t>(h) * w * p.channels;
        const size_t in_element = dtype_size(desc_.input), out_element = out_element_;
#pragma omp parallel for schedule(static) if (work > (1 << 16))
        for (int64_t item = 0; item < items; ++item) {
            thread_local AlignedBuffer buffer;  // the padding row, then the ring of kernel_h + 1 rows
            auto* scratch = static_cast<int32_t*>(buffer.reserve((p.kernel_h + 2) * row_size * sizeof(int32_t)));
            std::fill_n(scratch, row_size, kPaddingQuad);
            const int image = static_cast<int>(item / (static_cast<int64_t>(bands) * p.blocks));
            const int within = static_cast<int>(item % (static_cast<int64_t>(bands) * p.blocks));
            const int oh_begin = within / p.blocks * band_rows, oh_end = std::min(h, oh_begin + band_rows);
            rows_(p, static_cast<const char*>(x) + image * image_values * in_element, h, w, within % p.blocks, oh_begin, oh_end,
                  static_cast<char*>(y) + image * image_values * out_element, scratch + row_size, scratch);
        }
    }

private:
    RowsFunction rows_;
    size_t out_element_;
    Packed packed_;
};

}  // namespace

bool handles_int8_depthwise(const ConvDesc& d) {
    const bool same_size = d.kernel_h % 2 == 1 && d.kernel_w % 2 == 1 && d.pad_h == d.kernel_h / 2 && d.pad_w == d.kernel_w / 2;
    const bool types = (d.input == DType::f32 || d.input == DType::bf16) &&
                       (d.output == DType::f32 || (d.output == DType::bf16 && !d.accumulate));
    // compute_precision int8: one output channel per input channel, stride 1, both sides at least
    // kMinInt8DepthwiseKernel (kernels.h), so two or three quads per kernel row.
    return d.depthwise() && compute_precision(d) == Precision::int8 && same_size && d.kernel_h <= kMaxKernel && d.kernel_w <= kMaxKernel &&
           d.activation == Activation::none && types && vnni_supported();
}

std::unique_ptr<Conv2d> make_int8_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) {
    return std::make_unique<Int8DepthwiseConv2d>(desc, weight, bias);
}

std::unique_ptr<Conv2d> make_int8_depthwise_conv2d_to_levels(const ConvDesc& desc, const Tensor& weight, const Tensor& bias,
                                                             const std::vector<float>& output_inverse_steps) {
    return std::make_unique<Int8DepthwiseConv2d>(desc, weight, bias, output_inverse_steps);
}

}  // namespace mclip::kernels::avx512
