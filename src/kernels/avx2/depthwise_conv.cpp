#include "kernels/avx2/depthwise_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/ops.h"

namespace mclip::kernels::avx2 {
namespace {

constexpr int kLanes = 8;    // float32 lanes of a ymm register
constexpr int kColumns = 4;  // output columns computed together, sharing each weight load

// Eight input channels for eight consecutive output channels: the same eight with a channel
// multiplier of 1; with 2, output channels o..o+7 read input channels o/2..o/2+3, each twice.
template <int Multiplier>
__attribute__((target("avx2,fma"))) inline __m256 load_input(const float* x) {
    if constexpr (Multiplier == 1) {
        return _mm256_loadu_ps(x);
    } else {
        const __m256 four = _mm256_castps128_ps256(_mm_loadu_ps(x));
        return _mm256_permutevar8x32_ps(four, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    }
}

struct Geometry {
    int h, w, in_channels, out_channels;
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    int out_w;
};

// Output columns ow0..ow0+3 of channels [c, c + 8) into out[j · out_stride], from `row`: input
// row ih0 + kh_begin, column 0, channel c / m. Checked skips the taps outside the image (the
// columns at its edges; a column past the output's end computes harmless values the caller
// drops); unchecked, the loop has no bounds checks. Four accumulators, in registers, hide the
// latency of the multiply-adds.
template <int Multiplier, bool Checked>
__attribute__((target("avx2,fma"))) inline void column_block(const Geometry& g, const float* row, const float* tap, int kh_count, int iw0,
                                                             __m256 bias, float* out, int64_t out_stride) {
    const int64_t input_row = static_cast<int64_t>(g.w) * g.in_channels;
    const int64_t tap_row = static_cast<int64_t>(g.kernel_w) * g.out_channels;
    const int s = g.stride_w;
    __m256 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    const int64_t column_step = static_cast<int64_t>(s) * g.in_channels;
    for (int kh = 0; kh < kh_count; ++kh) {
        const float* wp = tap + kh * tap_row;
        for (int kw = 0; kw < g.kernel_w; ++kw) {
            const __m256 wv = _mm256_loadu_ps(wp + static_cast<int64_t>(kw) * g.out_channels);
            const int iw = iw0 + kw;
            const float* xp = row + kh * input_row + static_cast<int64_t>(iw) * g.in_channels;
            if (!Checked || (iw >= 0 && iw < g.w)) a0 = _mm256_fmadd_ps(load_input<Multiplier>(xp), wv, a0);
            if (!Checked || (iw + s >= 0 && iw + s < g.w)) a1 = _mm256_fmadd_ps(load_input<Multiplier>(xp + column_step), wv, a1);
            if (!Checked || (iw + 2 * s >= 0 && iw + 2 * s < g.w)) a2 = _mm256_fmadd_ps(load_input<Multiplier>(xp + 2 * column_step), wv, a2);
            if (!Checked || (iw + 3 * s >= 0 && iw + 3 * s < g.w)) a3 = _mm256_fmadd_ps(load_input<Multiplier>(xp + 3 * column_step), wv, a3);
        }
    }
    _mm256_storeu_ps(out, a0);
    _mm256_storeu_ps(out + out_stride, a1);
    _mm256_storeu_ps(out + 2 * out_stride, a2);
    _mm256_storeu_ps(out + 3 * out_stride, a3);
}
static_assert(kColumns == 4, "column_block computes four columns");

// Output columns [ow_begin, ow_end) of output row `oh` of one batch item:
// out[ow, c] = bias[c] + Σ w[kh, kw, c]·x[ih, iw, c / m]; `out` points at column ow_begin.
template <int Multiplier>
__attribute__((target("avx2,fma"))) void conv_row(const Geometry& g, const float* image, const float* weights, const float* bias, int oh,
                                                   int ow_begin, int ow_end, float* out) {
    const int channels = g.out_channels;
    const int vector_end = channels / kLanes * kLanes;
    const int ih0 = oh * g.stride_h - g.pad_h;
    const int kh_begin = std::max(0, -ih0), kh_end = std::min(g.kernel_h, g.h - ih0);
    const float* first_row = image + static_cast<int64_t>(ih0 + kh_begin) * g.w * g.in_channels;
    const float* first_tap = weights + static_cast<int64_t>(kh_begin) * g.kernel_w * channels;
    const auto out_at = [&](int ow, int c) { return out + static_cast<int64_t>(ow - ow_begin) * channels + c; };
    // Channel vectors outermost: the input columns one vector reads over the kernel's rows
    // (kh · w · 8 floats) stay in the L1 cache while the row is swept.
    for (int c = 0; c < vector_end; c += kLanes) {
        const __m256 b = _mm256_loadu_ps(bias + c);
        const float* row = first_row + c / Multiplier;
        const float* tap = first_tap + c;
        for (int ow = ow_begin; ow < ow_end; ow += kColumns) {
            const int columns = std::min(kColumns, ow_end - ow);
            const int iw0 = ow * g.stride_w - g.pad_w;
            const bool interior = iw0 >= 0 && iw0 + (kColumns - 1) * g.stride_w + g.kernel_w <= g.w;
            if (columns < kColumns) {
                alignas(32) float tile[kColumns * kLanes];
                column_block<Multiplier, true>(g, row, tap, kh_end - kh_begin, iw0, b, tile, kLanes);
                for (int j = 0; j < columns; ++j) std::copy(tile + j * kLanes, tile + (j + 1) * kLanes, out_at(ow + j, c));
            } else if (interior) {
                column_block<Multiplier, false>(g, row, tap, kh_end - kh_begin, iw0, b, out_at(ow, c), channels);
            } else {
                column_block<Multiplier, true>(g, row, tap, kh_end - kh_begin, iw0, b, out_at(ow, c), channels);
            }
        }
    }
    // Channels past the last full vector (channel counts that are not a multiple of 8).
    for (int ow = ow_begin; ow < ow_end; ++ow) {
        const int iw_start = ow * g.stride_w - g.pad_w;
        for (int c = vector_end; c < channels; ++c) {
            float sum = bias[c];
            for (int kh = kh_begin; kh < kh_end; ++kh) {
                for (int kw = 0; kw < g.kernel_w; ++kw) {
                    const int iw = iw_start + kw;
                    if (iw < 0 || iw >= g.w) continue;
                    sum += weights[(static_cast<int64_t>(kh) * g.kernel_w + kw) * channels + c] *
                           image[(static_cast<int64_t>(ih0 + kh) * g.w + iw) * g.in_channels + c / Multiplier];
                }
            }
            *out_at(ow, c) = sum;
        }
    }
}

class DepthwiseConv2d final : public Conv2d {
public:
    DepthwiseConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), multiplier_(desc.out_channels / desc.in_channels),
          weights_(static_cast<size_t>(desc.kernel_h) * desc.kernel_w * desc.out_channels), bias_(desc.out_channels, 0.0f) {
        const Tensor w = weight.dtype() == DType::f32 ? weight : weight.to_f32();
        const int taps = desc.kernel_h * desc.kernel_w;
        for (int o = 0; o < desc.out_channels; ++o) {
            for (int t = 0; t < taps; ++t) weights_[static_cast<size_t>(t) * desc.out_channels + o] = w.f32()[static_cast<int64_t>(o) * taps + t];
        }
        if (!bias.empty()) {
            const Tensor b = bias.dtype() == DType::f32 ? bias : bias.to_f32();
            std::copy(b.f32(), b.f32() + desc.out_channels, bias_.begin());
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const Geometry g{h, w, desc_.in_channels, desc_.out_channels, desc_.kernel_h, desc_.kernel_w, desc_.stride_h, desc_.stride_w,
                         desc_.pad_h, desc_.pad_w, desc_.output_w(w)};
        const int out_h = desc_.output_h(h);
        const int64_t rows = static_cast<int64_t>(n) * out_h;
        // Work items are output rows, split into column ranges when there are too few rows to
        // keep every thread busy (a 1×k convolution over a sequence is a single row).
        const int threads = num_threads();
        const int splits = static_cast<int>(std::clamp<int64_t>((2 * threads + rows - 1) / rows, 1, std::max(1, g.out_w / (4 * kColumns))));
        const int split_width = (g.out_w + splits - 1) / splits;
        const int64_t work = rows * g.out_w * g.out_channels * desc_.kernel_h * desc_.kernel_w;
#pragma omp parallel for schedule(static) if (work > (1 << 16))
        for (int64_t item = 0; item < rows * splits; ++item) {
            thread_local std::vector<float> staging;
            const int64_t r = item / splits;
            const int ow_begin = static_cast<int>(item % splits) * split_width, ow_end = std::min(g.out_w, ow_begin + split_width);
            if (ow_begin >= ow_end) continue;
            const int batch_item = static_cast<int>(r / out_h), oh = static_cast<int>(r % out_h);
            const float* image = static_cast<const float*>(x) + static_cast<int64_t>(batch_item) * h * w * g.in_channels;
            const int64_t count = static_cast<int64_t>(ow_end - ow_begin) * g.out_channels;
            float* out = static_cast<float*>(y) + (r * g.out_w + ow_begin) * g.out_channels;
            // A residual add needs the new values apart from y's: they are finished in a
            // per-thread buffer while still in cache.
            if (desc_.accumulate && staging.size() < static_cast<size_t>(count)) staging.resize(count);
            float* values = desc_.accumulate ? staging.data() : out;
            if (multiplier_ == 1) {
                conv_row<1>(g, image, weights_.data(), bias_.data(), oh, ow_begin, ow_end, values);
            } else {
                conv_row<2>(g, image, weights_.data(), bias_.data(), oh, ow_begin, ow_end, values);
            }
            apply_activation_serial(desc_.activation, values, count);
            if (desc_.accumulate) add_inplace(out, values, count);
        }
    }

private:
    int multiplier_;
    std::vector<float> weights_;  // [kh, kw, out_channels]
    std::vector<float> bias_;
};

}  // namespace

bool handles_depthwise(const ConvDesc& desc) {
    if (!desc.depthwise() || desc.precision != Precision::f32 || desc.input != DType::f32 || desc.output != DType::f32) return false;
    const int multiplier = desc.out_channels / desc.in_channels;
    return desc.out_channels % desc.in_channels == 0 && (multiplier == 1 || multiplier == 2);
}

std::unique_ptr<Conv2d> make_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) {
    return std::make_unique<DepthwiseConv2d>(desc, weight, bias);
}

}  // namespace mclip::kernels::avx2
