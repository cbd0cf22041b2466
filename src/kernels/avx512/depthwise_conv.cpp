#include "kernels/avx512/depthwise_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/avx512/vectors.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

// Output columns computed together, one accumulator per column and output vector: 8 for channel
// multiplier 1, 4 for 2, leaving registers for the input columns they read.
constexpr int block_columns(int multiplier) { return 8 / multiplier; }

int padded(int channels) { return (channels + kLanes - 1) / kLanes * kLanes; }

struct Geometry {
    int h, w, in_channels, out_channels;
    int kernel_h, stride_h, pad_h, pad_w;
    int out_w;
    int weight_stride;  // channels of one tap in the repacked weights: out_channels rounded up to 16 (32 for multiplier 2)
};

// Multiplier 2: output channels 2i and 2i + 1 both read input channel i. The weights and bias are
// packed per 16 input channels as the 16 even outputs' then the 16 odd ones' (pair_offset), so
// that each input vector, loaded as it is, serves two accumulators, and the two are interleaved
// into output order once, at the store: no permutation per input loaded. Each output's
// multiply-adds come in the same order as with multiplier 1 (the bias, then the taps row by row).
int pair_offset(int o) { return o / 2 / kLanes * 2 * kLanes + o % 2 * kLanes + o / 2 % kLanes; }

// The Inputs input columns one kernel row of a column block reads, from `first` (the row's
// column 0 when Checked, else its column iw0): Checked loads zeros for the columns outside the
// image.
template <int Inputs, typename In, bool Checked>
MCLIP_AVX512 __attribute__((always_inline)) inline void load_row_inputs(const In* first, int iw0, int w, int64_t column, __mmask16 mask,
                                                                         __m512 (&in)[Inputs]) {
    if constexpr (Checked) {
#pragma GCC unroll 32
        for (int i = 0; i < Inputs; ++i) {
            const int iw = iw0 + i;
            in[i] = iw < 0 || iw >= w ? _mm512_setzero_ps() : load16(first + static_cast<int64_t>(iw) * column, mask);
        }
    } else {
        // Pointers stepped one column at a time: the addresses cost an add each, not a multiply.
        const In* x = first;
#pragma GCC unroll 32
        for (int i = 0; i < Inputs; ++i, x += column) in[i] = load16(x, mask);
    }
}

// block_columns(M) output columns from ow0 of the M·16 output channels one vector of 16 input
// channels feeds (lanes in_mask), into out[j · out_stride] (the lanes of output vector v in
// out_mask[v]), from `row`: the input at row ih0 + kh_begin, column 0, the first input channel;
// `tap`: the weights of row kh_begin, column 0, the first output channel. Per kernel row the
// input columns the block reads are loaded into registers once and each tap's weights once.
// Checked loads zeros for the columns outside the image.
template <int M, int KernelW, int Stride, typename In, bool Checked>
MCLIP_AVX512 __attribute__((always_inline)) inline void column_block(const Geometry& g, const In* row, const float* tap, int kh_count, int iw0,
                                                                      const __m512 (&bias)[M], __mmask16 in_mask,
                                                                      const __mmask16 (&out_mask)[M], float* out, int64_t out_stride) {
    constexpr int kColumns = block_columns(M);
    constexpr int kInputs = (kColumns - 1) * Stride + KernelW;
    const int64_t input_row = static_cast<int64_t>(g.w) * g.in_channels;
    __m512 acc[M][kColumns];
#pragma GCC unroll 8
    for (int j = 0; j < kColumns; ++j) {
        for (int v = 0; v < M; ++v) acc[v][j] = bias[v];
    }
    const int64_t column = g.in_channels;
    const In* first = Checked ? row : row + static_cast<int64_t>(iw0) * column;
    const float* weights = tap;
    for (int kh = 0; kh < kh_count; ++kh, first += input_row, weights += KernelW * g.weight_stride) {
        __m512 in[kInputs];
        load_row_inputs<kInputs, In, Checked>(first, iw0, g.w, column, in_mask, in);
        const float* w = weights;
#pragma GCC unroll 16
        for (int kw = 0; kw < KernelW; ++kw, w += g.weight_stride) {
            __m512 wv[M];
            for (int v = 0; v < M; ++v) wv[v] = _mm512_loadu_ps(w + v * kLanes);
#pragma GCC unroll 8
            for (int j = 0; j < kColumns; ++j) {
                for (int v = 0; v < M; ++v) acc[v][j] = _mm512_fmadd_ps(in[j * Stride + kw], wv[v], acc[v][j]);
            }
        }
    }
    if constexpr (M == 1) {
#pragma GCC unroll 8
        for (int j = 0; j < kColumns; ++j) _mm512_mask_storeu_ps(out + j * out_stride, out_mask[0], acc[0][j]);
    } else {
        static_assert(M == 2);
        const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
#pragma GCC unroll 4
        for (int j = 0; j < kColumns; ++j) {
            _mm512_mask_storeu_ps(out + j * out_stride, out_mask[0], _mm512_permutex2var_ps(acc[0][j], low, acc[1][j]));
            _mm512_mask_storeu_ps(out + j * out_stride + kLanes, out_mask[1], _mm512_permutex2var_ps(acc[0][j], high, acc[1][j]));
        }
    }
}

// Output rows [oh_begin, oh_end) and columns [ow_begin, ow_end) of one image, float32, into
// `out` (which points at row oh_begin, column ow_begin; out_row_stride floats from one row to
// the next, out_channels from one column to the next), channel multiplier M:
// out[oh, ow, o] = bias[o] + Σ w[kh, kw, o]·x[ih, iw, o / M], weights and bias packed by
// pair_offset for M = 2 (g.weight_stride a multiple of 32).
template <int M, int KernelW, int Stride, typename In>
MCLIP_AVX512 void conv_rows(const Geometry& g, const void* image_bytes, const float* weights, const float* bias, int oh_begin, int oh_end,
                            int ow_begin, int ow_end, float* out, int64_t out_row_stride) {
    constexpr int kColumns = block_columns(M);
    constexpr int kInputs = (kColumns - 1) * Stride + KernelW;
    const In* image = static_cast<const In*>(image_bytes);
    const int channels = g.out_channels;
    __mmask16 whole_tile[M];
    for (int v = 0; v < M; ++v) whole_tile[v] = kAllLanes;
    // Channel vectors outermost, then rows: the kernel_h input rows one vector of channels reads
    // stay in the L1 cache from one output row to the next, which reads one or two new ones.
    for (int ci = 0; ci < g.in_channels; ci += kLanes) {
        const int c = M * ci;  // the first output channel
        const __mmask16 in_mask = lanes_from(ci, g.in_channels);
        __mmask16 out_mask[M];
        __m512 b[M];
        for (int v = 0; v < M; ++v) {
            out_mask[v] = c + v * kLanes < channels ? lanes_from(c + v * kLanes, channels) : 0;
            b[v] = _mm512_loadu_ps(bias + c + v * kLanes);
        }
        for (int oh = oh_begin; oh < oh_end; ++oh) {
            const int ih0 = oh * g.stride_h - g.pad_h;
            const int kh_begin = std::max(0, -ih0), kh_end = std::min(g.kernel_h, g.h - ih0);
            const In* row = image + static_cast<int64_t>(ih0 + kh_begin) * g.w * g.in_channels + ci;
            const float* tap = weights + static_cast<int64_t>(kh_begin) * KernelW * g.weight_stride + c;
            float* out_row = out + (oh - oh_begin) * out_row_stride + c;
            for (int ow = ow_begin; ow < ow_end; ow += kColumns) {
                const int iw0 = ow * Stride - g.pad_w;
                float* at = out_row + static_cast<int64_t>(ow - ow_begin) * channels;
                if (ow + kColumns > ow_end) {
                    alignas(64) float tile[kColumns * M * kLanes];
                    column_block<M, KernelW, Stride, In, true>(g, row, tap, kh_end - kh_begin, iw0, b, in_mask, whole_tile, tile, M * kLanes);
                    for (int j = 0; j < ow_end - ow; ++j) {
                        for (int v = 0; v < M; ++v) {
                            _mm512_mask_storeu_ps(at + static_cast<int64_t>(j) * channels + v * kLanes, out_mask[v],
                                                  _mm512_load_ps(tile + (j * M + v) * kLanes));
                        }
                    }
                } else if (iw0 >= 0 && iw0 + kInputs <= g.w) {
                    column_block<M, KernelW, Stride, In, false>(g, row, tap, kh_end - kh_begin, iw0, b, in_mask, out_mask, at, channels);
                } else {
                    column_block<M, KernelW, Stride, In, true>(g, row, tap, kh_end - kh_begin, iw0, b, in_mask, out_mask, at, channels);
                }
            }
        }
    }
}

using BandFunction = void (*)(const Geometry&, const void*, const float*, const float*, int, int, int, int, float*, int64_t);

template <int KernelW, int Stride>
BandFunction band_function_for(int multiplier, DType input) {
    if (multiplier == 2) return input == DType::bf16 ? conv_rows<2, KernelW, Stride, uint16_t> : conv_rows<2, KernelW, Stride, float>;
    return input == DType::bf16 ? conv_rows<1, KernelW, Stride, uint16_t> : conv_rows<1, KernelW, Stride, float>;
}

// The band function for `desc`, or null for a shape the kernel is not built for.
BandFunction band_function(const ConvDesc& d) {
    const int multiplier = d.out_channels / d.in_channels;
    if (d.kernel_w == 3 && d.stride_w == 1) return band_function_for<3, 1>(multiplier, d.input);
    if (d.kernel_w == 3 && d.stride_w == 2) return band_function_for<3, 2>(multiplier, d.input);
    if (d.kernel_w == 7 && d.stride_w == 1) return band_function_for<7, 1>(multiplier, d.input);
    if (d.kernel_w == 7 && d.stride_w == 2) return band_function_for<7, 2>(multiplier, d.input);
    if (d.kernel_w == 11 && d.stride_w == 1) return band_function_for<11, 1>(multiplier, d.input);
    return nullptr;
}

class DepthwiseConv2d final : public Conv2d {
public:
    DepthwiseConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), band_(band_function(desc)), pairs_(desc.out_channels == 2 * desc.in_channels),
          weight_stride_(pairs_ ? 2 * padded(desc.in_channels) : padded(desc.out_channels)),
          weights_(static_cast<size_t>(desc.kernel_h) * desc.kernel_w * weight_stride_, 0.0f), bias_(weight_stride_, 0.0f) {
        const Tensor w = weight.dtype() == DType::f32 ? weight : weight.to_f32();
        const Tensor b = bias.empty() ? Tensor() : bias.dtype() == DType::f32 ? bias : bias.to_f32();
        const int taps = desc.kernel_h * desc.kernel_w;
        for (int o = 0; o < desc.out_channels; ++o) {
            const int at = pairs_ ? pair_offset(o) : o;
            for (int t = 0; t < taps; ++t) weights_[static_cast<size_t>(t) * weight_stride_ + at] = w.f32()[static_cast<int64_t>(o) * taps + t];
            if (!b.empty()) bias_[at] = b.f32()[o];
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const Geometry g{h, w, desc_.in_channels, desc_.out_channels, desc_.kernel_h, desc_.stride_h, desc_.pad_h, desc_.pad_w,
                         desc_.output_w(w), weight_stride_};
        const int out_h = desc_.output_h(h);
        const int64_t rows = static_cast<int64_t>(n) * out_h;
        const int threads = num_threads();
        // Work items are bands of output rows of one image, about four per thread and at most
        // eight rows each (S0 at 64×64 on two threads: bands of 8; at 8×8: of 1); a 1×k
        // convolution over sequences has too few rows, and its rows are split into column ranges.
        const int splits = static_cast<int>(std::clamp<int64_t>((2 * threads + rows - 1) / rows, 1, std::max(1, g.out_w / (2 * block_columns(desc_.out_channels / desc_.in_channels)))));
        const int band = splits > 1 ? 1 : static_cast<int>(std::clamp<int64_t>(rows / (4 * threads), 1, 8));
        const int bands_per_image = (out_h + band - 1) / band;
        const int split_width = (g.out_w + splits - 1) / splits;
        const int64_t items = static_cast<int64_t>(n) * bands_per_image * splits;
        const int64_t work = rows * g.out_w * g.out_channels * desc_.kernel_h * desc_.kernel_w;
        // A float32 result without a residual is written in place; otherwise it is finished
        // (converted, added to y) row by row from a per-thread buffer while still in cache.
        const bool in_place = desc_.output == DType::f32 && !desc_.accumulate;
        const size_t in_element = dtype_size(desc_.input), out_element = dtype_size(desc_.output);
        const int64_t image_values = static_cast<int64_t>(h) * w * g.in_channels;
#pragma omp parallel for schedule(static) if (work > (1 << 16))
        for (int64_t item = 0; item < items; ++item) {
            thread_local std::vector<float> staging;
            const int image = static_cast<int>(item / (bands_per_image * splits));
            const int within = static_cast<int>(item % (bands_per_image * splits));
            const int oh_begin = within / splits * band, oh_end = std::min(out_h, oh_begin + band);
            const int ow_begin = within % splits * split_width, ow_end = std::min(g.out_w, ow_begin + split_width);
            if (ow_begin >= ow_end) continue;
            const int64_t row_count = static_cast<int64_t>(ow_end - ow_begin) * g.out_channels;
            const int64_t first = ((static_cast<int64_t>(image) * out_h + oh_begin) * g.out_w + ow_begin) * g.out_channels;
            const int64_t y_row_stride = static_cast<int64_t>(g.out_w) * g.out_channels;
            const char* input = static_cast<const char*>(x) + image * image_values * in_element;
            if (in_place) {
                float* values = static_cast<float*>(y) + first;
                band_(g, input, weights_.data(), bias_.data(), oh_begin, oh_end, ow_begin, ow_end, values, y_row_stride);
                for (int r = 0; r < oh_end - oh_begin; ++r) apply_activation_serial(desc_.activation, values + r * y_row_stride, row_count);
                continue;
            }
            const size_t needed = static_cast<size_t>((oh_end - oh_begin) * row_count);
            if (staging.size() < needed) staging.resize(needed);
            band_(g, input, weights_.data(), bias_.data(), oh_begin, oh_end, ow_begin, ow_end, staging.data(), row_count);
            for (int r = 0; r < oh_end - oh_begin; ++r) {
                float* values = staging.data() + r * row_count;
                apply_activation_serial(desc_.activation, values, row_count);
                store_f32(values, row_count, static_cast<char*>(y) + (first + r * y_row_stride) * out_element, desc_.output, desc_.accumulate);
            }
        }
    }

private:
    BandFunction band_;
    bool pairs_;  // channel multiplier 2: weights and bias packed by pair_offset
    int weight_stride_;
    std::vector<float> weights_;  // [kh, kw, weight_stride_], zero past out_channels
    std::vector<float> bias_;     // [weight_stride_]
};

}  // namespace

bool handles_depthwise(const ConvDesc& desc) {
    if (!desc.depthwise() || desc.precision != Precision::f32 || desc.out_channels % desc.in_channels != 0) return false;
    const int multiplier = desc.out_channels / desc.in_channels;
    return (multiplier == 1 || multiplier == 2) && band_function(desc) != nullptr;
}

std::unique_ptr<Conv2d> make_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) {
    return std::make_unique<DepthwiseConv2d>(desc, weight, bias);
}

}  // namespace mclip::kernels::avx512
