#include "kernels/avx512/conv_pair.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/avx512/vectors.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

constexpr int kTileColumns = 6;                    // first-layer output columns in a register tile
constexpr int kTileVectors = 4;                    // 16-channel vectors in a register tile: 24 sums
constexpr int kChunk = kLanes * kTileVectors;      // output channels of a tile
constexpr int kKernel = 3, kStride = 2, kPad = 1;  // both layers' (handles_conv_pair)
constexpr int kImageChannels = 3;                  // the first layer's input channels
constexpr int kTaps = kKernel * kKernel * kImageChannels;

int divide_up(int n, int d) { return (n + d - 1) / d; }

bool is_stem_shaped(const ConvDesc& d) {
    return d.kernel_h == kKernel && d.kernel_w == kKernel && d.stride_h == kStride && d.stride_w == kStride && d.pad_h == kPad &&
           d.pad_w == kPad && !d.accumulate && (d.activation == Activation::none || d.activation == Activation::gelu) &&
           d.input == DType::f32 && d.output == DType::f32 && compute_precision(d) != Precision::int8;
}

// A register tile of the first layer: kTileColumns output columns × V vectors of 16 channels,
// summed over the kTaps taps and stored into out (`columns` of them, `out_stride` floats apart).
// `input`: the padded input at the tile's first output column; tap i reads it at offsets[i];
// `weights`: the chunk's, [tap][64]. Not inlined, and one loop over the taps with a body of
// constant offsets, so that the 24 sums keep their registers (with the taps unrolled, GCC moved
// sums through the stack: half the speed).
template <int V>
[[gnu::noinline]] MCLIP_AVX512 void first_tile(const float* input, const int64_t* offsets, const float* weights, const float* bias, float* out,
                                               int64_t out_stride, int columns) {
    constexpr int kColumnStep = kStride * kImageChannels;
    __m512 sums[kTileColumns][V];
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) {
        const __m512 b = _mm512_loadu_ps(bias + kLanes * j);
#pragma GCC unroll 6
        for (int t = 0; t < kTileColumns; ++t) sums[t][j] = b;
    }
    for (int i = 0; i < kTaps; ++i, weights += kChunk) {
        const float* tap = input + offsets[i];
        __m512 w[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) w[j] = _mm512_loadu_ps(weights + kLanes * j);
#pragma GCC unroll 6
        for (int t = 0; t < kTileColumns; ++t) {
            const __m512 x = _mm512_set1_ps(tap[t * kColumnStep]);
#pragma GCC unroll 4
            for (int j = 0; j < V; ++j) sums[t][j] = _mm512_fmadd_ps(x, w[j], sums[t][j]);
        }
    }
    for (int t = 0; t < columns; ++t) {
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) _mm512_storeu_ps(out + t * out_stride + kLanes * j, sums[t][j]);
    }
}

using FirstTile = void (*)(const float*, const int64_t*, const float*, const float*, float*, int64_t, int);
// By a chunk's vector count.
const FirstTile kFirstTiles[] = {nullptr, first_tile<1>, first_tile<2>, first_tile<3>, first_tile<4>};

// One output row of the depthwise layer, before its activation: `rows` the kKernel rows of the
// first layer's output it reads, each with kPad zero columns on the left (and enough on the right).
MCLIP_AVX512 void depthwise_row(const float* const rows[kKernel], int channels, int out_w, const float* weights, const float* bias,
                                float* out) {
    for (int c = 0; c < channels; c += kLanes) {
        __m512 w[kKernel * kKernel];
#pragma GCC unroll 9
        for (int k = 0; k < kKernel * kKernel; ++k) w[k] = _mm512_loadu_ps(weights + k * channels + c);
        const __m512 b = _mm512_loadu_ps(bias + c);
        for (int x = 0; x < out_w; ++x) {
            __m512 sum = b;
#pragma GCC unroll 3
            for (int ky = 0; ky < kKernel; ++ky) {
                const float* column = rows[ky] + static_cast<int64_t>(x) * kStride * channels + c;
#pragma GCC unroll 3
                for (int kx = 0; kx < kKernel; ++kx) sum = _mm512_fmadd_ps(_mm512_loadu_ps(column + kx * channels), w[ky * kKernel + kx], sum);
            }
            _mm512_storeu_ps(out + static_cast<int64_t>(x) * channels + c, sum);
        }
    }
}

class StemConvPair final : public ConvPair {
public:
    StemConvPair(const ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias, const ConvDesc& second,
                 const Tensor& second_weight, const Tensor& second_bias)
        : ConvPair(first, second), channels_(first.out_channels),
          first_weights_(static_cast<size_t>(divide_up(channels_, kChunk)) * kChunk * kKernel * kKernel * kImageChannels, 0.0f),
          first_bias_(channels_, 0.0f), second_weights_(static_cast<size_t>(kKernel) * kKernel * channels_), second_bias_(channels_, 0.0f) {
        // First: [chunk of 64 outputs][ky][kx][input channel][64], a tile's operands in the order it reads them.
        const Tensor w1 = first_weight.to_f32();
        for (int o = 0; o < channels_; ++o) {
            for (int c = 0; c < kImageChannels; ++c) {
                for (int k = 0; k < kKernel * kKernel; ++k) {
                    const size_t packed = ((static_cast<size_t>(o / kChunk) * kKernel * kKernel + k) * kImageChannels + c) * kChunk + o % kChunk;
                    first_weights_[packed] = w1.f32()[(static_cast<size_t>(o) * kImageChannels + c) * kKernel * kKernel + k];
                }
            }
        }
        // Second: [ky][kx][channel].
        const Tensor w2 = second_weight.to_f32();
        for (int c = 0; c < channels_; ++c) {
            for (int k = 0; k < kKernel * kKernel; ++k) second_weights_[static_cast<size_t>(k) * channels_ + c] = w2.f32()[c * kKernel * kKernel + k];
        }
        if (!first_bias.empty()) std::copy_n(first_bias.to_f32().f32(), channels_, first_bias_.begin());
        if (!second_bias.empty()) std::copy_n(second_bias.to_f32().f32(), channels_, second_bias_.begin());
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const Geometry g = geometry(h, w);
        // Each image's output rows in bands, about two per thread: a band recomputes the
        // first-layer row it shares with the band above (S0 at 256×256 on two threads: 4 bands
        // of 16 rows, 3% more products).
        const int threads = num_threads();
        const int bands_per_image = std::clamp(divide_up(2 * threads, n), 1, g.out_h);
        const int band_rows = divide_up(g.out_h, bands_per_image);
        const int bands = divide_up(g.out_h, band_rows);
        const int64_t items = static_cast<int64_t>(n) * bands;
        const float* images = static_cast<const float*>(x);
        float* out = static_cast<float*>(y);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t item = 0; item < items; ++item) {
            const int image = static_cast<int>(item / bands), first_row = static_cast<int>(item % bands) * band_rows;
            run_band(g, images + static_cast<int64_t>(image) * h * w * kImageChannels, first_row, std::min(g.out_h, first_row + band_rows),
                     out + static_cast<int64_t>(image) * g.out_h * g.out_w * channels_);
        }
    }

private:
    struct Geometry {
        int h, w;
        int mid_h, mid_w;  // the first layer's output
        int out_h, out_w;
        int input_stride;  // floats in a padded input row: every column a tile of the last one reads
        int ring_stride;   // floats in a ring row: kPad zero columns, mid_w columns, zeros after
    };

    Geometry geometry(int h, int w) const {
        Geometry g;
        g.h = h;
        g.w = w;
        g.mid_h = first_.output_h(h);
        g.mid_w = first_.output_w(w);
        g.out_h = second_.output_h(g.mid_h);
        g.out_w = second_.output_w(g.mid_w);
        g.input_stride = ((divide_up(g.mid_w, kTileColumns) * kTileColumns - 1) * kStride + kKernel) * kImageChannels;
        g.ring_stride = std::max(kPad + g.mid_w, (g.out_w - 1) * kStride + kKernel) * channels_;
        return g;
    }

    // Output rows [row_begin, row_end) of one image: the first layer's rows they need, each
    // computed once into the ring, then the depthwise rows from it.
    void run_band(const Geometry& g, const float* image, int row_begin, int row_end, float* out) const {
        thread_local Workspace scratch;
        float* input = scratch.floats(0, static_cast<int64_t>(kKernel) * g.input_stride);
        float* ring = scratch.floats(1, static_cast<int64_t>(kKernel + 1) * g.ring_stride);
        float* zero_row = ring + static_cast<int64_t>(kKernel) * g.ring_stride;
        std::fill(ring, ring + static_cast<int64_t>(kKernel + 1) * g.ring_stride, 0.0f);
        int next_mid_row = 0;  // the first of the first layer's rows this band has not computed
        for (int row = row_begin; row < row_end; ++row) {
            const float* rows[kKernel];
            for (int ky = 0; ky < kKernel; ++ky) {
                const int mid_row = row * kStride - kPad + ky;
                if (mid_row < 0 || mid_row >= g.mid_h) {
                    rows[ky] = zero_row;
                    continue;
                }
                float* slot = ring + static_cast<int64_t>(mid_row % kKernel) * g.ring_stride;
                if (mid_row >= next_mid_row) {
                    first_layer_row(g, image, mid_row, input, slot + kPad * channels_);
                    next_mid_row = mid_row + 1;
                }
                rows[ky] = slot;
            }
            float* out_row = out + static_cast<int64_t>(row) * g.out_w * channels_;
            depthwise_row(rows, channels_, g.out_w, second_weights_.data(), second_bias_.data(), out_row);
            apply_activation_serial(second_.activation, out_row, static_cast<int64_t>(g.out_w) * channels_);
        }
    }

    // Row `row` of the first layer's output, activation applied, into out [mid_w, channels].
    void first_layer_row(const Geometry& g, const float* image, int row, float* input, float* out) const {
        const int64_t image_row = static_cast<int64_t>(g.w) * kImageChannels;
        for (int ky = 0; ky < kKernel; ++ky) {
            float* padded = input + ky * g.input_stride;
            std::fill(padded, padded + g.input_stride, 0.0f);
            const int y = row * kStride - kPad + ky;
            if (y >= 0 && y < g.h) std::copy_n(image + y * image_row, image_row, padded + kPad * kImageChannels);
        }
        // Tap (ky, kx, c) at padded row ky, column kx, channel c.
        int64_t offsets[kTaps];
        for (int i = 0; i < kTaps; ++i) offsets[i] = i / (kKernel * kImageChannels) * g.input_stride + i % (kKernel * kImageChannels);
        for (int chunk = 0; chunk < divide_up(channels_, kChunk); ++chunk) {
            const int vectors = std::min(kTileVectors, (channels_ - chunk * kChunk) / kLanes);
            const float* weights = first_weights_.data() + static_cast<size_t>(chunk) * kChunk * kKernel * kKernel * kImageChannels;
            for (int column = 0; column < g.mid_w; column += kTileColumns) {
                kFirstTiles[vectors](input + column * kStride * kImageChannels, offsets, weights,
                                     first_bias_.data() + chunk * kChunk, out + static_cast<int64_t>(column) * channels_ + chunk * kChunk,
                                     channels_, std::min(kTileColumns, g.mid_w - column));
            }
        }
        apply_activation_serial(first_.activation, out, static_cast<int64_t>(g.mid_w) * channels_);
    }

    int channels_;
    std::vector<float> first_weights_, first_bias_;
    std::vector<float> second_weights_, second_bias_;
};

}  // namespace

bool handles_conv_pair(const ConvDesc& first, const ConvDesc& second) {
    return is_stem_shaped(first) && is_stem_shaped(second) && first.groups == 1 && first.in_channels == kImageChannels &&
           first.out_channels > 0 && first.out_channels % kLanes == 0 && second.depthwise() && second.in_channels == first.out_channels &&
           second.out_channels == second.in_channels;
}

std::unique_ptr<ConvPair> make_conv_pair(const ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias, const ConvDesc& second,
                                         const Tensor& second_weight, const Tensor& second_bias) {
    return std::make_unique<StemConvPair>(first, first_weight, first_bias, second, second_weight, second_bias);
}

}  // namespace mclip::kernels::avx512
