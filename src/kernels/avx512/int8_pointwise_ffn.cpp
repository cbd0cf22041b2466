#include "kernels/avx512/int8_pointwise_ffn.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "kernels/avx512/cpu.h"
#include "kernels/avx512/quantize.h"
#include "kernels/avx512/softmax.h"
#include "kernels/avx512/vectors.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

constexpr int kTileRows = 6;      // positions in a register tile
constexpr int kChunkVectors = 4;  // vectors of 16 outputs in a tile: 24 sums, 4 weights and a broadcast of the 32 registers
constexpr int kChunk = kLanes * kChunkVectors;
constexpr int kBlockRows = 4 * kTileRows;  // positions one thread carries through both products at a time
constexpr uint8_t kZeroPoint = 128;
// Work is shared by ranges of positions where each thread gets at least this many register tiles
// (S0's stages down to 16×16), by register tiles otherwise (execute).
constexpr int64_t kTilesPerThread = 8;

int64_t divide_up(int64_t n, int64_t d) { return (n + d - 1) / d; }

// One product's weights, quantized and packed for vpdpbusd, and what turns its int32 sums into values.
struct PackedLayer {
    PackedLayer(const Tensor& weight, const Tensor& bias_values, int output_count, int input_count, float input_range,
                const std::vector<float>& smoothing)
        : outputs(output_count), inputs(input_count), zero_point_sums(output_count), scales(output_count), bias(output_count, 0.0f) {
        int8_t* const weights = static_cast<int8_t*>(packed_weights.reserve(static_cast<size_t>(outputs) * inputs));
        const Tensor plain = weight.to_f32();
        const Tensor w = smoothing.empty() ? plain : smooth_input_channels(plain, smoothing);
        const RowQuantized q = kernels::quantize_rows_s8(w.f32(), outputs, inputs);
        for (int o = 0; o < outputs; ++o) {
            const int chunk = o / kChunk, width = 16 * vectors(chunk);
            int8_t* packed = weights + static_cast<size_t>(chunk) * kChunk * inputs;
            int32_t sum = 0;
            for (int k = 0; k < inputs; ++k) {
                const int8_t value = q.values[static_cast<size_t>(o) * inputs + k];
                packed[static_cast<size_t>(k / 4) * width * 4 + (o % kChunk) * 4 + k % 4] = value;
                sum += value;
            }
            zero_point_sums[o] = -kZeroPoint * sum;
            scales[o] = int8_step(input_range) * q.steps[o];
        }
        if (!bias_values.empty()) {
            const Tensor b = bias_values.to_f32();
            std::copy(b.f32(), b.f32() + outputs, bias.begin());
        }
    }

    int chunks() const { return static_cast<int>(divide_up(outputs, kChunk)); }
    // Outputs [kChunk·chunk, kChunk·chunk + 16·vectors(chunk)).
    int vectors(int chunk) const { return std::min(kChunkVectors, (outputs - chunk * kChunk) / 16); }
    const int8_t* chunk_weights(int chunk) const {
        return static_cast<const int8_t*>(packed_weights.data()) + static_cast<size_t>(chunk) * kChunk * inputs;
    }

    int outputs, inputs;
    // For each chunk of 64 outputs (the last one 16·vectors wide), for each group of 4 inputs,
    // each output's 4 weights: a vpdpbusd operand per 16 outputs, on whole cache lines.
    AlignedBuffer packed_weights;
    std::vector<int32_t> zero_point_sums;  // −128·Σ_k w[o][k], where each sum starts: the input's zero point's share taken out
    std::vector<float> scales;             // input step · weight step[o]
    std::vector<float> bias;
};

// A row of the hidden layer's V vectors of values, already divided by their steps, as 16·V
// consecutive unsigned bytes: quantize_s8's rounding and saturation, plus the zero point. Two
// saturating packs narrow four vectors at once but leave their 4-value groups interleaved by
// 128-bit lane; one dword permutation puts them back in order. The clamp at 127 guards the
// conversion (2^31 and beyond become INT_MIN), and takes NaN through to INT_MIN, −128.
template <int V>
MCLIP_AVX512_VNNI inline void store_hidden_levels(const __m512 (&scaled)[V], uint8_t* out) {
    __m512i levels[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        levels[j] = j < V ? _mm512_maskz_cvtps_epi32(kAllLanes, _mm512_maskz_min_ps(kAllLanes, _mm512_set1_ps(127.0f), scaled[j])) : _mm512_setzero_si512();
    }
    const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(levels[0], levels[1]), _mm512_packs_epi32(levels[2], levels[3]));
    const __m512i ordered = _mm512_maskz_permutexvar_epi32(kAllLanes, _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
    const __m512i shifted = _mm512_xor_si512(ordered, _mm512_set1_epi8(static_cast<char>(kZeroPoint)));
    if constexpr (V == 4) {
        _mm512_storeu_si512(out, shifted);
    } else {
        _mm512_mask_storeu_epi8(out, (__mmask64{1} << (16 * V)) - 1, shifted);
    }
}

// GELU for the hidden layer, v·Φ(v), with Φ (the normal distribution function) a cubic on each of
// 32 intervals of [−5, 5], interpolated at the interval's four Chebyshev nodes from std::erf: its
// coefficients are two registers each, looked up by vpermt2ps. 12 instructions where ops.h's
// rational erf takes about 21, at most 1.6e-6 from the exact GELU in [−5, 5] (the ops' one: 1e-6),
// against steps of 1e-2 and more in the quantized hidden layer; beyond ±5, Φ is held at its
// value there (1 − 3e-7 and 3e-7). It was a third of the kernel's time on S0's 64×64 stage.
constexpr int kCdfIntervals = 32;
constexpr float kCdfLimit = 5.0f;

struct NormalCdfCubics {
    // coefficients[k][i]: of u^k on interval i, v = −5 + (i + u)·(10/32), u in [0, 1).
    alignas(64) float coefficients[4][kCdfIntervals];
    NormalCdfCubics() {
        constexpr double width = 2.0 * kCdfLimit / kCdfIntervals;
        double nodes[4];
        for (int j = 0; j < 4; ++j) nodes[j] = 0.5 + 0.5 * std::cos((2 * j + 1) * std::numbers::pi / 8);
        for (int i = 0; i < kCdfIntervals; ++i) {
            // The cubic through (nodes[j], Φ) in Newton's divided differences, then in powers of u.
            double d[4];
            for (int j = 0; j < 4; ++j) d[j] = 0.5 * std::erfc(-(-kCdfLimit + (i + nodes[j]) * width) / std::sqrt(2.0));
            for (int level = 1; level < 4; ++level) {
                for (int j = 3; j >= level; --j) d[j] = (d[j] - d[j - 1]) / (nodes[j] - nodes[j - level]);
            }
            double power[4] = {d[3], 0, 0, 0};  // Horner on the Newton form, in the power basis
            for (int j = 2; j >= 0; --j) {
                for (int k = 3; k > 0; --k) power[k] = power[k - 1] - nodes[j] * power[k];
                power[0] = d[j] - nodes[j] * power[0];
            }
            for (int k = 0; k < 4; ++k) coefficients[k][i] = static_cast<float>(power[k]);
        }
    }
};

const NormalCdfCubics& normal_cdf_cubics() {
    static const NormalCdfCubics cubics;
    return cubics;
}

// The table in registers: for each power of u, the coefficients of intervals 0–15 and 16–31.
struct CdfRegisters {
    __m512 low[4], high[4];
};

MCLIP_AVX512_VNNI inline CdfRegisters load_cdf_registers() {
    const NormalCdfCubics& cubics = normal_cdf_cubics();
    CdfRegisters r;
    for (int k = 0; k < 4; ++k) {
        r.low[k] = _mm512_load_ps(cubics.coefficients[k]);
        r.high[k] = _mm512_load_ps(cubics.coefficients[k] + 16);
    }
    return r;
}

MCLIP_AVX512_VNNI inline __m512 hidden_gelu16(__m512 v, const CdfRegisters& cdf) {
    constexpr float scale = kCdfIntervals / (2 * kCdfLimit);
    constexpr int kSmallerMagnitudeSignOfFirst = 0x02;  // vrangeps: min(|a|, |b|) with a's sign
    constexpr int kFractionBelow = 0x09;                // vreduceps: t − floor(t), no precision exception
    // v clamped to ±(5 − 5e-6) in one instruction, as t = (v + 5)·3.2 in (0, 32): the interval
    // and the place in it.
    const __m512 clamped = _mm512_maskz_range_ps(kAllLanes, v, _mm512_set1_ps(kCdfLimit * 0.999999f), kSmallerMagnitudeSignOfFirst);
    const __m512 t = _mm512_fmadd_ps(clamped, _mm512_set1_ps(scale), _mm512_set1_ps(kCdfLimit * scale));
    const __m512i interval = _mm512_maskz_cvttps_epi32(kAllLanes, t);
    const __m512 u = _mm512_maskz_reduce_ps(kAllLanes, t, kFractionBelow);
    __m512 phi = _mm512_permutex2var_ps(cdf.low[3], interval, cdf.high[3]);
    for (int k = 2; k >= 0; --k) phi = _mm512_fmadd_ps(phi, u, _mm512_permutex2var_ps(cdf.low[k], interval, cdf.high[k]));
    return _mm512_mul_ps(v, phi);
}

// QuickGELU for the hidden layer (OpenAI CLIP's MLPs), v·σ(1.702·v), with σ(z) = 1/(1 + e^−|z|)
// for z ≥ 0 and e^−|z|/(1 + e^−|z|) below: the exponential of a nonpositive argument
// (softmax.h), the reciprocal by rcp14's estimate and one Newton step, r·(2 − q·r), within
// float32 rounding of 1/q.
MCLIP_AVX512_VNNI inline __m512 hidden_quick_gelu16(__m512 v) {
    const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(1.702f));
    const __m512 minus_magnitude = _mm512_or_ps(z, _mm512_set1_ps(-0.0f));
    const __m512 e = exp_nonpositive(minus_magnitude);
    const __m512 q = _mm512_add_ps(e, _mm512_set1_ps(1.0f));
    __m512 r = _mm512_maskz_rcp14_ps(kAllLanes, q);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));
    const __mmask16 negative = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mul_ps(v, _mm512_mask_mul_ps(r, negative, e, r));
}

MCLIP_AVX512_VNNI inline __m512 hidden_activation16(Activation activation, __m512 v, const CdfRegisters& cdf) {
    if (activation == Activation::gelu) return hidden_gelu16(v, cdf);
    if (activation == Activation::quick_gelu) return hidden_quick_gelu16(v);
    return v;
}

// Rows [first, first + rows) of x [positions, channels] (float32 or bf16) quantized into q
// [padded_rows, channels] as unsigned bytes: quantize.h's levels with the zero point added (the
// sign bit flipped), the rows past `rows` zero (the zero point).
MCLIP_AVX512_VNNI void quantize_input_rows(bool bf16, const void* x, int64_t first, int rows, int padded_rows, int channels,
                                           const float* inverse_steps, uint8_t* q) {
    const char* from = static_cast<const char*>(x) + first * channels * static_cast<int64_t>(bf16 ? sizeof(uint16_t) : sizeof(float));
    quantize_rows_s8(bf16, from, rows, channels, inverse_steps, reinterpret_cast<int8_t*>(q));
    const int64_t count = static_cast<int64_t>(rows) * channels;  // a multiple of 16
    for (int64_t i = 0; i < count; i += 16) {
        __m128i* bytes = reinterpret_cast<__m128i*>(q + i);
        _mm_storeu_si128(bytes, _mm_xor_si128(_mm_loadu_si128(bytes), _mm_set1_epi8(static_cast<char>(kZeroPoint))));
    }
    std::memset(q + count, kZeroPoint, static_cast<size_t>(padded_rows - rows) * channels);
}

// sums[r][j] = Σ_k (a[r][k] − 128)·w[16j + lane][k] over the layer's inputs, for a tile of kTileRows rows
// of a (rows `inputs` bytes apart) and a chunk's V vectors of outputs: 16·V sums per row. Not
// inlined into the epilogues, whose values would otherwise take registers from the 24 sums
// (GCC then moves sums through other registers and the stack in the loop: half the speed).
template <int V>
[[gnu::noinline]] MCLIP_AVX512_VNNI void tile_sums(const uint8_t* a, const PackedLayer& layer, int chunk, int32_t* sums) {
    __m512i s[kTileRows][V];
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) {
        const __m512i start = _mm512_loadu_si512(layer.zero_point_sums.data() + chunk * kChunk + 16 * j);
#pragma GCC unroll 6
        for (int r = 0; r < kTileRows; ++r) s[r][j] = start;
    }
    const int8_t* w = layer.chunk_weights(chunk);
    const int64_t stride = layer.inputs;
    for (int g = 0; g < layer.inputs / 4; ++g, w += V * 64) {
        __m512i b[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) b[j] = _mm512_load_si512(w + j * 64);
#pragma GCC unroll 6
        for (int r = 0; r < kTileRows; ++r) {
            int32_t four;
            std::memcpy(&four, a + r * stride + 4 * g, sizeof(four));
            const __m512i broadcast = _mm512_set1_epi32(four);
#pragma GCC unroll 4
            for (int j = 0; j < V; ++j) s[r][j] = _mm512_dpbusd_epi32(s[r][j], broadcast, b[j]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < kTileRows; ++r) {
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) _mm512_store_si512(sums + (r * V + j) * 16, s[r][j]);
    }
}

// The value of a vector of sums: sum·scale + bias, for outputs [o, o + 16).
MCLIP_AVX512_VNNI inline __m512 dequantize(const int32_t* sums, const PackedLayer& layer, int o) {
    return _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAllLanes, _mm512_load_si512(sums)), _mm512_loadu_ps(layer.scales.data() + o),
                           _mm512_loadu_ps(layer.bias.data() + o));
}

// A tile of fc1 into the hidden block: quantized act(x·W1ᵀ + b1), rows `hidden_stride` bytes apart.
template <int V>
MCLIP_AVX512_VNNI void hidden_tile(const uint8_t* a, const PackedLayer& fc1, int chunk, Activation activation, const float* inverse_steps,
                                   uint8_t* hidden, int64_t hidden_stride) {
    alignas(64) int32_t sums[kTileRows * V * 16];
    tile_sums<V>(a, fc1, chunk, sums);
    const int first = chunk * kChunk;
    const CdfRegisters cdf = load_cdf_registers();
    for (int r = 0; r < kTileRows; ++r) {
        __m512 scaled[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) {
            const int o = first + 16 * j;
            const __m512 v = hidden_activation16(activation, dequantize(sums + (r * V + j) * 16, fc1, o), cdf);
            scaled[j] = _mm512_mul_ps(v, _mm512_loadu_ps(inverse_steps + o));
        }
        store_hidden_levels<V>(scaled, hidden + r * hidden_stride + first);
    }
}

// A tile of fc2 added into y: y[r] += h·W2ᵀ + b2 for the tile's first `rows` rows, `y_stride` floats apart.
template <int V>
MCLIP_AVX512_VNNI void output_tile(const uint8_t* a, const PackedLayer& fc2, int chunk, int rows, float* y, int64_t y_stride) {
    alignas(64) int32_t sums[kTileRows * V * 16];
    tile_sums<V>(a, fc2, chunk, sums);
    const int first = chunk * kChunk;
    for (int r = 0; r < rows; ++r) {
        float* out = y + r * y_stride + first;
        for (int j = 0; j < V; ++j) {
            _mm512_storeu_ps(out + 16 * j, _mm512_add_ps(_mm512_loadu_ps(out + 16 * j), dequantize(sums + (r * V + j) * 16, fc2, first + 16 * j)));
        }
    }
}

using HiddenTile = void (*)(const uint8_t*, const PackedLayer&, int, Activation, const float*, uint8_t*, int64_t);
using OutputTile = void (*)(const uint8_t*, const PackedLayer&, int, int, float*, int64_t);
// By a chunk's vector count.
const HiddenTile kHiddenTiles[] = {nullptr, hidden_tile<1>, hidden_tile<2>, hidden_tile<3>, hidden_tile<4>};
const OutputTile kOutputTiles[] = {nullptr, output_tile<1>, output_tile<2>, output_tile<3>, output_tile<4>};

class Int8PointwiseFfn final : public PointwiseFfn {
public:
    // levels_input: x holds the input's unsigned levels already (make_int8_pointwise_ffn_of_levels).
    Int8PointwiseFfn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2, bool levels_input)
        : PointwiseFfn(desc), levels_input_(levels_input), fc1_(w1, b1, desc.hidden, desc.channels, desc.input_range, desc.input_smoothing),
          fc2_(w2, b2, desc.channels, desc.hidden, desc.hidden_range, desc.hidden_smoothing),
          input_inverse_steps_(int8_inverse_steps(desc.input_range, desc.input_smoothing, desc.channels)),
          hidden_inverse_steps_(int8_inverse_steps(desc.hidden_range, desc.hidden_smoothing, desc.hidden)) {}

protected:
    void execute(const void* x, int64_t positions, float* y) const override {
        const int threads = num_threads();
        if (divide_up(positions, kTileRows) >= kTilesPerThread * threads) {
#pragma omp parallel num_threads(threads)
            by_ranges(x, positions, y);
            return;
        }
        // By tiles: the quantized input and the hidden layer of every position, in the calling
        // thread's buffers, shared with the team.
        thread_local Workspace shared;
        const int64_t rows = divide_up(positions, kTileRows) * kTileRows;
        uint8_t* input = static_cast<uint8_t*>(shared.bytes(0, static_cast<size_t>(rows) * desc_.channels));
        uint8_t* hidden = static_cast<uint8_t*>(shared.bytes(1, static_cast<size_t>(rows) * desc_.hidden));
#pragma omp parallel num_threads(threads)
        by_tiles(x, positions, input, hidden, y);
    }

private:
    // x's rows [first, first + rows) into q, padded to `padded_rows` rows.
    void quantize_input(const void* x, int64_t first, int rows, int padded_rows, uint8_t* q) const {
        if (levels_input_) {
            const size_t row_bytes = desc_.channels;
            std::memcpy(q, static_cast<const uint8_t*>(x) + first * row_bytes, rows * row_bytes);
            std::memset(q + rows * row_bytes, kZeroPoint, (padded_rows - rows) * row_bytes);
            return;
        }
        quantize_input_rows(desc_.input == DType::bf16, x, first, rows, padded_rows, desc_.channels, input_inverse_steps_.data(), q);
    }

    // The quantized rows [first, first + rows) padded to `padded_rows`: x's own where it holds
    // levels and no padding is needed, otherwise `buffer`, filled.
    const uint8_t* input_block(const void* x, int64_t first, int rows, int padded_rows, uint8_t* buffer) const {
        if (levels_input_ && rows == padded_rows) return static_cast<const uint8_t*>(x) + first * desc_.channels;
        quantize_input(x, first, rows, padded_rows, buffer);
        return buffer;
    }

    void hidden_tile(const uint8_t* input, int chunk, uint8_t* hidden) const {
        kHiddenTiles[fc1_.vectors(chunk)](input, fc1_, chunk, desc_.activation, hidden_inverse_steps_.data(), hidden,
                                          desc_.hidden);
    }

    void output_tile(const uint8_t* hidden, int chunk, int rows, float* y) const {
        kOutputTiles[fc2_.vectors(chunk)](hidden, fc2_, chunk, rows, y, desc_.channels);
    }

    // This thread's range of the positions (inside the parallel region), a balanced contiguous
    // share, so that it reads the rows the layers before it wrote in this thread and writes those
    // the layers after it read here (they split images by rows too). Each block of positions goes
    // through both products, the hidden block in this thread's buffer, read from the L1 cache.
    void by_ranges(const void* x, int64_t positions, float* y) const {
        const int channels = desc_.channels, hidden_width = desc_.hidden;
        thread_local Workspace scratch;
        uint8_t* buffer = static_cast<uint8_t*>(scratch.bytes(0, static_cast<size_t>(kBlockRows) * channels));
        uint8_t* hidden = static_cast<uint8_t*>(scratch.bytes(1, static_cast<size_t>(kBlockRows) * hidden_width));
        constexpr int kBlockTiles = kBlockRows / kTileRows;
        const int64_t tiles = divide_up(positions, kTileRows);
        const int team = omp_get_num_threads(), member = omp_get_thread_num();
        const int64_t tile_begin = tiles * member / team, tile_end = tiles * (member + 1) / team;
        for (int64_t tile = tile_begin; tile < tile_end; tile += kBlockTiles) {
            const int64_t first = tile * kTileRows;
            const int64_t last = std::min(positions, std::min(tile_end, tile + kBlockTiles) * kTileRows);
            const int rows = static_cast<int>(last - first);
            const int block_tiles = static_cast<int>(divide_up(rows, kTileRows));
            const uint8_t* input = input_block(x, first, rows, block_tiles * kTileRows, buffer);
            for (int chunk = 0; chunk < fc1_.chunks(); ++chunk) {
                for (int t = 0; t < block_tiles; ++t) hidden_tile(input + t * kTileRows * channels, chunk, hidden + t * kTileRows * hidden_width);
            }
            for (int chunk = 0; chunk < fc2_.chunks(); ++chunk) {
                for (int t = 0; t < block_tiles; ++t) {
                    output_tile(hidden + t * kTileRows * hidden_width, chunk, std::min(kTileRows, rows - t * kTileRows),
                                y + (first + t * kTileRows) * channels);
                }
            }
        }
    }

    // This thread's share of each step for all positions (inside the parallel region): the
    // tiles of the input, then fc1's and fc2's (chunk, tile) pairs, chunk by chunk, so that each
    // thread reads its share of the weights.
    void by_tiles(const void* x, int64_t positions, uint8_t* input, uint8_t* hidden, float* y) const {
        const int channels = desc_.channels, hidden_width = desc_.hidden;
        const int64_t tiles = divide_up(positions, kTileRows);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
            const int64_t first = t * kTileRows;
            quantize_input(x, first, static_cast<int>(std::min<int64_t>(kTileRows, positions - first)), kTileRows, input + first * channels);
        }
#pragma omp for schedule(static)
        for (int64_t item = 0; item < fc1_.chunks() * tiles; ++item) {
            const int64_t first = item % tiles * kTileRows;
            hidden_tile(input + first * channels, static_cast<int>(item / tiles), hidden + first * hidden_width);
        }
#pragma omp for schedule(static)
        for (int64_t item = 0; item < fc2_.chunks() * tiles; ++item) {
            const int64_t first = item % tiles * kTileRows;
            output_tile(hidden + first * hidden_width, static_cast<int>(item / tiles), static_cast<int>(std::min<int64_t>(kTileRows, positions - first)),
                        y + first * channels);
        }
    }

    bool levels_input_;
    PackedLayer fc1_, fc2_;
    std::vector<float> input_inverse_steps_;   // [channels]: quantize_s8's, smoothing included
    std::vector<float> hidden_inverse_steps_;  // [hidden]
};

}  // namespace

MCLIP_AVX512_VNNI void hidden_activation(Activation activation, const float* x, int64_t count, float* y) {
    const CdfRegisters cdf = load_cdf_registers();
    for (int64_t i = 0; i < count; i += 16) {
        const __mmask16 lanes = count - i >= 16 ? kAllLanes : static_cast<__mmask16>((1u << (count - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, lanes, hidden_activation16(activation, _mm512_maskz_loadu_ps(lanes, x + i), cdf));
    }
}

bool handles_int8_pointwise_ffn(const PointwiseFfnDesc& desc) {
    return desc.precision == Precision::int8 && (desc.input == DType::bf16 || desc.input == DType::f32) &&
           (desc.activation == Activation::gelu || desc.activation == Activation::quick_gelu || desc.activation == Activation::none) &&
           desc.channels > 0 && desc.hidden > 0 &&
           desc.channels % 16 == 0 && desc.hidden % 16 == 0 && desc.input_range > 0 && desc.hidden_range > 0 && vnni_supported();
}

std::unique_ptr<PointwiseFfn> make_int8_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                      const Tensor& b2) {
    return std::make_unique<Int8PointwiseFfn>(desc, w1, b1, w2, b2, false);
}

std::unique_ptr<PointwiseFfn> make_int8_pointwise_ffn_of_levels(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1,
                                                                const Tensor& w2, const Tensor& b2) {
    return std::make_unique<Int8PointwiseFfn>(desc, w1, b1, w2, b2, true);
}

}  // namespace mclip::kernels::avx512
