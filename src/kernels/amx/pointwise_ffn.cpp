#include "kernels/amx/pointwise_ffn.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/amx/tiles.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::amx {
namespace {

// A tile is 16 rows of 64 bytes: 16×32 bf16 of an operand, or 16×16 float32 of a product.
constexpr int kTileRows = 16;
constexpr int kDepth = 32;       // bf16 values along a tile row: the inputs one tdpbf16ps sums
constexpr int kBlockRows = 32;   // positions per block: two A tiles
constexpr int kBlockCols = 32;   // outputs per step: two B tiles, four C tiles
constexpr int kPackedTile = kTileRows * kDepth;  // bf16 values in one packed weight tile

int padded(int n) { return (n + kBlockCols - 1) / kBlockCols * kBlockCols; }

// W [out, in] (float32) as tdpbf16ps's B operands, zero-padded to padded(out) × padded(in): for
// each block of 16 outputs and 32 inputs a tile of 16 rows, row p holding, for each output o, the
// pair W[o][2p], W[o][2p + 1]; the tiles of one block of outputs follow each other along the inputs.
std::vector<uint16_t> pack_weights(const Tensor& weight, int out, int in) {
    const Tensor w = weight.dtype() == DType::f32 ? weight : weight.to_f32();
    const int in_blocks = padded(in) / kDepth;
    std::vector<uint16_t> packed(static_cast<size_t>(padded(out)) * padded(in), 0);
    for (int o = 0; o < out; ++o) {
        for (int k = 0; k < in; ++k) {
            const size_t tile = static_cast<size_t>(o / kTileRows) * in_blocks + k / kDepth;
            const int p = k % kDepth / 2, pair = k % 2;
            packed[tile * kPackedTile + p * kDepth + o % kTileRows * 2 + pair] = mclip::f32_to_bf16(w.f32()[static_cast<int64_t>(o) * in + k]);
        }
    }
    return packed;
}

// The bias, zero-padded to padded(count).
std::vector<float> bias_values(const Tensor& bias, int count) {
    std::vector<float> values(padded(count), 0.0f);
    if (!bias.empty()) {
        const Tensor b = bias.dtype() == DType::f32 ? bias : bias.to_f32();
        std::copy(b.f32(), b.f32() + count, values.begin());
    }
    return values;
}

// `rows` rows of `channels` bf16 values copied into `to`, whose rows are padded(channels) wide,
// with zeros in the padding and in the rows up to `padded_rows`.
void copy_padded(const uint16_t* from, int64_t rows, int channels, int64_t padded_rows, uint16_t* to) {
    const int width = padded(channels);
    std::memset(to, 0, static_cast<size_t>(padded_rows) * width * sizeof(uint16_t));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(to + r * width, from + r * channels, static_cast<size_t>(channels) * sizeof(uint16_t));
}

// c [32 × 32] (float32, rows of 32) = a [32 × in] · the packed weights of outputs
// [16·first_tile, 16·first_tile + 32); a's rows are `a_stride` bytes apart.
MCLIP_AMX_BF16 inline void product_block(const uint16_t* a, int64_t a_stride, const uint16_t* packed, int in_blocks, int first_tile,
                                         float* c) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const char* a_top = reinterpret_cast<const char*>(a);
    const char* a_bottom = a_top + kTileRows * a_stride;
    const uint16_t* b_left = packed + static_cast<size_t>(first_tile) * in_blocks * kPackedTile;
    const uint16_t* b_right = b_left + static_cast<size_t>(in_blocks) * kPackedTile;
    // Each load just before the first product that needs it, so that loads overlap products.
    for (int k = 0; k < in_blocks; ++k) {
        _tile_loadd(4, a_top + k * kDepth * 2, a_stride);
        _tile_loadd(6, b_left + static_cast<size_t>(k) * kPackedTile, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, b_right + static_cast<size_t>(k) * kPackedTile, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a_bottom + k * kDepth * 2, a_stride);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    constexpr int stride = kBlockCols * sizeof(float);
    _tile_stored(0, c, stride);
    _tile_stored(1, c + kTileRows, stride);
    _tile_stored(2, c + kTileRows * kBlockCols, stride);
    _tile_stored(3, c + kTileRows * kBlockCols + kTileRows, stride);
}

// Two ways to share the work between threads:
// - by blocks of 32 positions, each carried through both products by one thread with the hidden
//   block in its own buffer: nothing but the blocks is shared, and the hidden layer never leaves
//   the cache; but every block reads all the weights, which pays while they stay in the L2 cache
//   (up to kBlockWeightBytes in bf16);
// - by columns: fc1's output columns split between the threads for all positions into a shared
//   hidden layer, then fc2's: each thread reads its share of the weights once per call, for
//   layers whose weights do not stay in the L2 cache (S0's last stage, the text RepMixer's
//   512 → 2048: 3–4 MB in bf16) and for calls with few blocks.
// Measured (bench_ops, two threads of the AMX Xeon, against oneDNN's two convolutions): by blocks
// S0 stage 2 (256×768 at 16×16, 0.8 MB of weights) 94 against 215 µs, S2 stage 2 (320×960, 1.2
// MB) 149 by blocks, 262 by columns; the text RepMixer's 512×2048 at 77 positions 379 µs by
// blocks, 254 by columns, 252 for oneDNN.
constexpr size_t kBlockWeightBytes = 3 << 19;

class AmxPointwiseFfn final : public PointwiseFfn {
public:
    AmxPointwiseFfn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2)
        : PointwiseFfn(desc), channels_padded_(padded(desc.channels)), hidden_padded_(padded(desc.hidden)),
          w1_(pack_weights(w1, desc.hidden, desc.channels)), w2_(pack_weights(w2, desc.channels, desc.hidden)),
          b1_(bias_values(b1, desc.hidden)), b2_(bias_values(b2, desc.channels)) {}

protected:
    void execute(const void* x, int64_t positions, float* y) const override {
        const int64_t blocks = (positions + kBlockRows - 1) / kBlockRows;
        const int threads = num_threads();
        if (shares_by_blocks(desc_) && blocks >= 2 * threads) {
#pragma omp parallel num_threads(threads)
            by_blocks(static_cast<const uint16_t*>(x), positions, y);
            return;
        }
        // By columns: the input padded to whole blocks and channels where it has to be, and the
        // hidden layer, in the calling thread's buffers, shared with the team.
        thread_local Workspace shared;
        const uint16_t* input = static_cast<const uint16_t*>(x);
        if (positions % kBlockRows != 0 || desc_.channels != channels_padded_) {
            uint16_t* padded_input = static_cast<uint16_t*>(shared.bytes(0, static_cast<size_t>(blocks) * kBlockRows * channels_padded_ * 2));
            copy_padded(input, positions, desc_.channels, blocks * kBlockRows, padded_input);
            input = padded_input;
        }
        uint16_t* hidden = static_cast<uint16_t*>(shared.bytes(1, static_cast<size_t>(blocks) * kBlockRows * hidden_padded_ * 2));
#pragma omp parallel num_threads(threads)
        by_columns(input, positions, hidden, y);
    }

private:
    // This thread's share of the blocks (called inside the parallel region). Channel and hidden
    // counts that are not multiples of 32 are padded with zeros: zero weights and biases give
    // zero (GELU(0) = 0) hidden columns past the real ones, and outputs past the real ones are
    // not stored.
    MCLIP_AMX_BF16 void by_blocks(const uint16_t* x, int64_t positions, float* y) const {
        const int channels = desc_.channels;
        configure_whole_tiles();
        thread_local Workspace scratch;
        uint16_t* hidden_block = static_cast<uint16_t*>(scratch.bytes(0, static_cast<size_t>(kBlockRows) * hidden_padded_ * 2));
        float* product = static_cast<float*>(scratch.bytes(1, kBlockRows * kBlockCols * sizeof(float)));
        uint16_t* input_block = static_cast<uint16_t*>(scratch.bytes(2, static_cast<size_t>(kBlockRows) * channels_padded_ * 2));
        const int64_t blocks = (positions + kBlockRows - 1) / kBlockRows;
#pragma omp for schedule(static)
        for (int64_t block = 0; block < blocks; ++block) {
            const int64_t first = block * kBlockRows;
            const int rows = static_cast<int>(std::min<int64_t>(kBlockRows, positions - first));
            const uint16_t* a = x + first * channels;
            if (rows < kBlockRows || channels != channels_padded_) {
                // A partial block or padded channels: the rows copied into a zeroed block.
                copy_padded(a, rows, channels, kBlockRows, input_block);
                a = input_block;
            }
            for (int n = 0; n < hidden_padded_; n += kBlockCols) first_product(a, n, product, hidden_block, hidden_padded_);
            for (int n = 0; n < channels_padded_; n += kBlockCols) second_product(hidden_block, n, product, rows, y + first * channels);
        }
        _tile_release();
    }

    // This thread's share of the columns of each product, for every block (inside the parallel
    // region); `input` holds whole blocks of channels_padded_ columns.
    MCLIP_AMX_BF16 void by_columns(const uint16_t* input, int64_t positions, uint16_t* hidden, float* y) const {
        configure_whole_tiles();
        thread_local Workspace scratch;
        float* product = static_cast<float*>(scratch.bytes(1, kBlockRows * kBlockCols * sizeof(float)));
        const int64_t blocks = (positions + kBlockRows - 1) / kBlockRows;
#pragma omp for schedule(static)
        for (int n = 0; n < hidden_padded_; n += kBlockCols) {
            for (int64_t block = 0; block < blocks; ++block) {
                const int64_t first = block * kBlockRows;
                first_product(input + first * channels_padded_, n, product, hidden + first * hidden_padded_, hidden_padded_);
            }
        }
#pragma omp for schedule(static)
        for (int n = 0; n < channels_padded_; n += kBlockCols) {
            for (int64_t block = 0; block < blocks; ++block) {
                const int64_t first = block * kBlockRows;
                const int rows = static_cast<int>(std::min<int64_t>(kBlockRows, positions - first));
                second_product(hidden + first * hidden_padded_, n, product, rows, y + first * desc_.channels);
            }
        }
        _tile_release();
    }

    // Hidden columns [n, n + 32) of a block: bf16(act(a·W1ᵀ + b1)) into `hidden` (rows hidden_stride apart).
    MCLIP_AMX_BF16 void first_product(const uint16_t* a, int n, float* product, uint16_t* hidden, int64_t hidden_stride) const {
        product_block(a, int64_t{channels_padded_} * 2, w1_.data(), channels_padded_ / kDepth, n / kTileRows, product);
        bias_activation_to_bf16(product, kBlockRows, kBlockCols, b1_.data() + n, desc_.activation, hidden + n, hidden_stride);
    }

    // Output columns [n, n + 32) of a block's first `rows` rows: y += hidden·W2ᵀ + b2.
    MCLIP_AMX_BF16 void second_product(const uint16_t* hidden, int n, float* product, int rows, float* y) const {
        product_block(hidden, int64_t{hidden_padded_} * 2, w2_.data(), hidden_padded_ / kDepth, n / kTileRows, product);
        const int columns = std::min(kBlockCols, desc_.channels - n);
        for (int r = 0; r < rows; ++r) {
            const float* row = product + r * kBlockCols;
            float* out = y + static_cast<int64_t>(r) * desc_.channels + n;
            for (int j = 0; j < columns; ++j) out[j] += row[j] + b2_[n + j];
        }
    }

    int channels_padded_, hidden_padded_;
    std::vector<uint16_t> w1_, w2_;  // packed (pack_weights)
    std::vector<float> b1_, b2_;     // zero-padded
};

}  // namespace

bool shares_by_blocks(const PointwiseFfnDesc& desc) {
    return static_cast<size_t>(padded(desc.channels)) * padded(desc.hidden) * 2 * sizeof(uint16_t) <= kBlockWeightBytes;
}

bool handles_pointwise_ffn(const PointwiseFfnDesc& desc) {
    return desc.precision == Precision::bf16 && desc.input == DType::bf16 &&
           (desc.activation == Activation::gelu || desc.activation == Activation::none) && desc.channels > 0 && desc.hidden > 0 && usable(false);
}

std::unique_ptr<PointwiseFfn> make_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                 const Tensor& b2) {
    return std::make_unique<AmxPointwiseFfn>(desc, w1, b1, w2, b2);
}

}  // namespace mclip::kernels::amx
