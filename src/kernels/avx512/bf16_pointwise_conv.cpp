#include "kernels/avx512/bf16_pointwise_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/avx512/vectors.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

constexpr int kTileRows = 6;      // positions in a register tile
constexpr int kChunkVectors = 4;  // vectors of 16 outputs in a tile: 24 sums, 4 weights and a broadcast of the 32 registers
constexpr int kChunk = kLanes * kChunkVectors;
constexpr int kBlockTiles = 4;  // tiles a thread carries through its output channels at a time
// Below this many tiles per thread the threads share the output channels instead of the
// positions: each then reads only its share of the weights (S0's last downsampling layer, 8×8
// positions and 512×512 weights).
constexpr int64_t kMinTilesPerThread = 8;

int64_t divide_up(int64_t n, int64_t d) { return (n + d - 1) / d; }

// The weights as vdpbf16ps takes them: per chunk of 64 outputs, per pair of input channels
// (k, k+1), per output n of the chunk, the two bf16 values W[n][k], W[n][k+1]; an odd input
// channel count is padded with a zero channel.
struct PackedWeights {
    int pairs = 0, outputs = 0;
    std::vector<uint16_t> values;
    std::vector<float> bias;  // [outputs]
    int chunks() const { return static_cast<int>(divide_up(outputs, kChunk)); }
    int vectors(int chunk) const { return std::min(kChunkVectors, (outputs - chunk * kChunk) / kLanes); }
    size_t chunk_offset(int c) const { return static_cast<size_t>(c) * kChunk * 2 * pairs; }
    const uint16_t* chunk(int c) const { return values.data() + chunk_offset(c); }
};

// Rows [first, first + rows) of x [positions, channels] as bf16 rows of 2·pairs values (the
// padding channel zero), rounded to nearest even, then zero rows up to `padded_rows`.
MCLIP_AVX512_BF16 void to_bf16_rows(const float* x, int64_t first, int rows, int padded_rows, int channels, int pairs, uint16_t* a) {
    const int width = 2 * pairs;
    for (int r = 0; r < padded_rows; ++r) {
        const float* source = r < rows ? x + (first + r) * channels : x;  // a padding row reads nothing (masks of zero)
        uint16_t* row = a + static_cast<int64_t>(r) * width;
        for (int k = 0; k < width; k += 32) {
            const int valid = r < rows ? std::clamp(channels - k, 0, 32) : 0;
            const __m512 low = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::min(valid, 16)) - 1u), source + k);
            const __m512 high = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::max(valid - 16, 0)) - 1u), source + k + 16);
            const __mmask32 store = width - k >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (width - k)) - 1u);
            _mm512_mask_storeu_epi16(row + k, store, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low)));
        }
    }
}

// A tile of kTileRows rows of a (bf16, 2·pairs values apart) times one chunk's V vectors of
// outputs, plus the bias, into out (rows `out_stride` floats apart).
template <int V>
[[gnu::noinline]] MCLIP_AVX512_BF16 void tile_products(const uint16_t* a, int pairs, const uint16_t* weights, const float* bias, float* out,
                                                       int64_t out_stride) {
    __m512 sums[kTileRows][V];
    for (int j = 0; j < V; ++j) {
        const __m512 b = _mm512_loadu_ps(bias + j * kLanes);
        for (int r = 0; r < kTileRows; ++r) sums[r][j] = b;
    }
    const int64_t a_stride = 2 * pairs;
    for (int p = 0; p < pairs; ++p, weights += V * 2 * kLanes) {
        __m512bh w[V];
        for (int j = 0; j < V; ++j) w[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(weights + j * 2 * kLanes));
        for (int r = 0; r < kTileRows; ++r) {
            int32_t pair;
            std::memcpy(&pair, a + r * a_stride + 2 * p, sizeof(pair));
            const __m512bh broadcast = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
            for (int j = 0; j < V; ++j) sums[r][j] = _mm512_dpbf16_ps(sums[r][j], broadcast, w[j]);
        }
    }
    for (int r = 0; r < kTileRows; ++r) {
        for (int j = 0; j < V; ++j) _mm512_storeu_ps(out + r * out_stride + j * kLanes, sums[r][j]);
    }
}

using TileFunction = void (*)(const uint16_t*, int, const uint16_t*, const float*, float*, int64_t);
// By a chunk's vector count.
const TileFunction kTileFunctions[] = {nullptr, tile_products<1>, tile_products<2>, tile_products<3>, tile_products<4>};

class Bf16PointwiseConv2d final : public Conv2d {
public:
    Bf16PointwiseConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) : Conv2d(desc) {
        PackedWeights& p = packed_;
        const int inputs = desc.in_channels;
        p.pairs = static_cast<int>(divide_up(inputs, 2));
        p.outputs = desc.out_channels;
        p.values.assign(p.chunk_offset(p.chunks()), 0);
        const Tensor w = weight.to_f32();
        std::vector<uint16_t> rounded(static_cast<size_t>(p.outputs) * inputs);
        f32_to_bf16(w.f32(), rounded.data(), static_cast<int64_t>(rounded.size()));
        for (int n = 0; n < p.outputs; ++n) {
            const int chunk = n / kChunk, within = n % kChunk, vectors = p.vectors(chunk);
            uint16_t* packed = p.values.data() + p.chunk_offset(chunk);
            for (int k = 0; k < inputs; ++k) {
                packed[(static_cast<size_t>(k / 2) * vectors * kLanes + within) * 2 + k % 2] = rounded[static_cast<size_t>(n) * inputs + k];
            }
        }
        p.bias.assign(p.outputs, 0.0f);
        if (!bias.empty()) {
            const Tensor b = bias.to_f32();
            std::copy(b.f32(), b.f32() + p.outputs, p.bias.begin());
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const int64_t positions = static_cast<int64_t>(n) * h * w;
        const int64_t tiles = divide_up(positions, kTileRows);
        const int chunks = packed_.chunks();
        const int64_t work = positions * desc_.in_channels * desc_.out_channels;
        const int parts = work > (1 << 16) ? num_threads() : 1;
        // Each part is a range of tiles and a range of chunks: every chunk of its share of the
        // positions (whole rows, as the depthwise layers around it split them, so that the
        // activations stay in each core's cache), or, with few positions, every position of its
        // share of the chunks.
        const bool by_positions = tiles >= kMinTilesPerThread * parts || chunks < parts;
#pragma omp parallel for schedule(static) num_threads(parts)
        for (int part = 0; part < parts; ++part) {
            const int64_t tile_begin = by_positions ? tiles * part / parts : 0, tile_end = by_positions ? tiles * (part + 1) / parts : tiles;
            const int chunk_begin = by_positions ? 0 : chunks * part / parts, chunk_end = by_positions ? chunks : chunks * (part + 1) / parts;
            run_part(x, positions, tile_begin, tile_end, chunk_begin, chunk_end, y);
        }
    }

private:
    // Tiles [tile_begin, tile_end) through chunks [chunk_begin, chunk_end), a block of tiles at a
    // time: its rows converted once, their products for every chunk into a float32 block, which
    // is finished (activation, residual, output type) in one pass.
    void run_part(const void* x, int64_t positions, int64_t tile_begin, int64_t tile_end, int chunk_begin, int chunk_end, void* y) const {
        if (tile_begin >= tile_end || chunk_begin >= chunk_end) return;
        const PackedWeights& p = packed_;
        const int first_column = chunk_begin * kChunk;
        const int width = std::min(p.outputs, chunk_end * kChunk) - first_column;
        thread_local AlignedBuffer rows_buffer, values_buffer;
        auto* a = static_cast<uint16_t*>(rows_buffer.reserve(static_cast<size_t>(kBlockTiles) * kTileRows * 2 * p.pairs * sizeof(uint16_t)));
        auto* values = static_cast<float*>(values_buffer.reserve(static_cast<size_t>(kBlockTiles) * kTileRows * width * sizeof(float)));
        const size_t out_element = dtype_size(desc_.output);
        for (int64_t block = tile_begin; block < tile_end; block += kBlockTiles) {
            const int block_tiles = static_cast<int>(std::min<int64_t>(kBlockTiles, tile_end - block));
            const int64_t first = block * kTileRows;
            const int rows = static_cast<int>(std::min<int64_t>(block_tiles * kTileRows, positions - first));
            to_bf16_rows(static_cast<const float*>(x), first, rows, block_tiles * kTileRows, desc_.in_channels, p.pairs, a);
            for (int chunk = chunk_begin; chunk < chunk_end; ++chunk) {
                const TileFunction tile = kTileFunctions[p.vectors(chunk)];
                for (int t = 0; t < block_tiles; ++t) {
                    tile(a + static_cast<int64_t>(t) * kTileRows * 2 * p.pairs, p.pairs, p.chunk(chunk), p.bias.data() + chunk * kChunk,
                         values + static_cast<int64_t>(t) * kTileRows * width + (chunk * kChunk - first_column), width);
                }
            }
            apply_activation_serial(desc_.activation, values, static_cast<int64_t>(rows) * width);
            char* out = static_cast<char*>(y) + (first * p.outputs + first_column) * out_element;
            if (width == p.outputs) {
                store_f32(values, static_cast<int64_t>(rows) * width, out, desc_.output, desc_.accumulate);
            } else {
                for (int r = 0; r < rows; ++r) {
                    store_f32(values + static_cast<int64_t>(r) * width, width, out + static_cast<int64_t>(r) * p.outputs * out_element, desc_.output,
                              desc_.accumulate);
                }
            }
        }
    }

    PackedWeights packed_;
};

}  // namespace

bool handles_bf16_pointwise(const ConvDesc& desc) {
    return desc.pointwise() && compute_precision(desc) == Precision::bf16 && desc.in_channels > 0 && desc.out_channels > 0 &&
           desc.out_channels % kLanes == 0 && desc.input == DType::f32 &&
           (desc.output == DType::f32 || desc.output == DType::bf16) &&
           (desc.activation == Activation::none || desc.activation == Activation::gelu);
}

std::unique_ptr<Conv2d> make_bf16_pointwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) {
    return std::make_unique<Bf16PointwiseConv2d>(desc, weight, bias);
}

}  // namespace mclip::kernels::avx512
