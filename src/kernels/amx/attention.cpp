#include "kernels/amx/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/amx/tiles.h"
#include "kernels/avx512/softmax.h"
#include "kernels/buffer.h"

namespace mclip::kernels::amx {
namespace {

using avx512::lanes_below;

// A tile is 16 rows of 64 bytes: 16×32 bf16 of an operand, or 16×16 float32 of a product.
constexpr int kTileRows = 16;
constexpr int kDepth = 32;  // bf16 values along a tile row: the inputs one tdpbf16ps sums
constexpr int kTileValues = kTileRows * kDepth;

int round_up(int n, int to) { return (n + to - 1) / to * to; }

// Per-thread buffers of one (sequence, head), for `length` positions of a head `head_dim` wide.
// Queries and score columns are padded to whole tiles of 16, keys as the depth of the second
// product to 32; the padding holds zeros.
struct HeadBuffers {
    int queries, key_columns, key_depth;
    uint16_t* q;       // [queries, head_dim]: the A operand of q·kᵀ
    uint16_t* k;       // B tiles of q·kᵀ: per block of 16 keys, per 32 of head_dim, row p the pairs (k[key][2p], k[key][2p+1])
    float* scores;     // [queries, key_columns]
    uint16_t* p;       // [queries, key_depth]: softmax rows, the A operand of p·v
    uint16_t* v_rows;  // [length, head_dim]: v before its rows are interleaved
    uint16_t* v;       // B tiles of p·v: per 16 of head_dim, per 32 keys, row p the pairs (v[2p][j], v[2p+1][j])
    float* out;        // [queries, head_dim]
    uint16_t* key;     // one key in bf16

    HeadBuffers(Workspace& ws, int length, int head_dim)
        : queries(round_up(length, kTileRows)), key_columns(round_up(length, kTileRows)), key_depth(round_up(length, kDepth)) {
        const auto bf16 = [&](int slot, int64_t count) { return static_cast<uint16_t*>(ws.bytes(slot, count * sizeof(uint16_t))); };
        q = bf16(0, int64_t{queries} * head_dim);
        k = bf16(1, int64_t{key_columns} * head_dim);
        scores = ws.floats(2, int64_t{queries} * key_columns);
        p = bf16(3, int64_t{queries} * key_depth);
        v_rows = bf16(4, int64_t{length} * head_dim);
        v = bf16(5, int64_t{key_depth} * head_dim);
        out = ws.floats(6, int64_t{queries} * head_dim);
        key = bf16(7, head_dim);
    }
};

// `count` values (a multiple of 32) from `values` + offset, float32 or bf16, as bf16 into `to`;
// float32 rounded to nearest even by vcvtne2ps2bf16.
MCLIP_AMX_BF16 inline void copy_as_bf16(const void* values, DType type, int64_t offset, int count, uint16_t* to) {
    if (type == DType::bf16) {
        std::memcpy(to, static_cast<const uint16_t*>(values) + offset, count * sizeof(uint16_t));
        return;
    }
    const float* from = static_cast<const float*>(values) + offset;
    for (int j = 0; j < count; j += 32) {
        const __m512bh rounded = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(from + j + 16), _mm512_loadu_ps(from + j));
        _mm512_storeu_si512(to + j, reinterpret_cast<const __m512i&>(rounded));
    }
}

// One row of 16-row product tiles: c[:, 16t, 16t + 16) = a · B(t) for t in [0, tiles), where a
// is `depth` tiles along its rows (a_stride bytes apart) and b_tile(t, k) the B tile of column
// block t and depth block k; c's rows are c_stride bytes apart. Two column blocks at a time
// (products in tiles 0 and 1, their B operands in 2 and 3, a in 4), so that one product runs
// while the next operand loads.
template <typename BTile>
MCLIP_AMX_BF16 inline void tile_row(const uint16_t* a, int64_t a_stride, int depth, BTile b_tile, int tiles, float* c, int64_t c_stride) {
    int t = 0;
    for (; t + 2 <= tiles; t += 2) {
        _tile_zero(0);
        _tile_zero(1);
        for (int k = 0; k < depth; ++k) {
            _tile_loadd(4, a + k * kDepth, a_stride);
            _tile_loadd(2, b_tile(t, k), 64);
            _tile_dpbf16ps(0, 4, 2);
            _tile_loadd(3, b_tile(t + 1, k), 64);
            _tile_dpbf16ps(1, 4, 3);
        }
        _tile_stored(0, c + t * kTileRows, c_stride);
        _tile_stored(1, c + (t + 1) * kTileRows, c_stride);
    }
    if (t < tiles) {
        _tile_zero(0);
        for (int k = 0; k < depth; ++k) {
            _tile_loadd(4, a + k * kDepth, a_stride);
            _tile_loadd(2, b_tile(t, k), 64);
            _tile_dpbf16ps(0, 4, 2);
        }
        _tile_stored(0, c + t * kTileRows, c_stride);
    }
}

// One row of probabilities: softmax(scale · x[0, visible)) in bf16 into p[0, width) (a multiple
// of 32), zeros past `visible`; x (whole blocks of 16 up to `visible`) is overwritten.
MCLIP_AMX_BF16 void softmax_row(float* x, int visible, float scale, uint16_t* p, int width) {
    const __m512 inverse = avx512::softmax_exponentials(x, visible, scale);
    for (int j = 0; j < width; j += 32) {
        const __m512 low = _mm512_maskz_mul_ps(lanes_below(j, visible), _mm512_maskz_loadu_ps(lanes_below(j, visible), x + j), inverse);
        const __m512 high =
            _mm512_maskz_mul_ps(lanes_below(j + 16, visible), _mm512_maskz_loadu_ps(lanes_below(j + 16, visible), x + j + 16), inverse);
        const __m512bh rounded = _mm512_cvtne2ps_pbh(high, low);
        _mm512_storeu_si512(p + j, reinterpret_cast<const __m512i&>(rounded));
    }
}

class AmxAttention final : public Attention {
public:
    using Attention::Attention;

protected:
    void execute(const void* qkv, int n, int length, void* out) const override {
        const int64_t pairs = int64_t{n} * desc_.heads;
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(num_threads(), pairs)))
        run_pairs(qkv, n, length, out);
    }

private:
    // This thread's share of the (sequence, head) pairs, inside the parallel region.
    MCLIP_AMX_BF16 void run_pairs(const void* qkv, int n, int length, void* out) const {
        configure_whole_tiles();
        thread_local Workspace scratch;
        HeadBuffers b(scratch, length, desc_.head_dim);
        const int64_t pairs = int64_t{n} * desc_.heads;
#pragma omp for schedule(static)
        for (int64_t pair = 0; pair < pairs; ++pair) {
            const int sequence = static_cast<int>(pair / desc_.heads), head = static_cast<int>(pair % desc_.heads);
            pack(qkv, sequence, head, length, b);
            scores(b);
            softmax(b, length);
            weighted_sum(b);
            store(b, sequence, head, length, out);
        }
        _tile_release();
    }

    // q, k and v of one head into their tiles, rounded to bf16.
    MCLIP_AMX_BF16 void pack(const void* qkv, int sequence, int head, int length, HeadBuffers& b) const {
        const int d = desc_.head_dim, width = desc_.heads * d, depth_blocks = d / kDepth;
        std::memset(b.q + int64_t{length} * d, 0, sizeof(uint16_t) * (b.queries - length) * d);
        std::memset(b.k, 0, sizeof(uint16_t) * b.key_columns * d);
        const __m512i tile_rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                     _mm512_set1_epi32(kTileRows));
        for (int i = 0; i < length; ++i) {
            const int64_t row = (int64_t{sequence} * length + i) * 3 * width + int64_t{head} * d;
            copy_as_bf16(qkv, desc_.input, row, d, b.q + int64_t{i} * d);
            copy_as_bf16(qkv, desc_.input, row + 2 * width, d, b.v_rows + int64_t{i} * d);
            // k: each pair of values is one 32-bit word; words [16t, 16t + 16) of key i go to
            // rows 0–15 of the tile (key block i / 16, depth block t), column i % 16.
            copy_as_bf16(qkv, desc_.input, row + width, d, b.key);
            for (int t = 0; t < depth_blocks; ++t) {
                uint16_t* tile = b.k + (int64_t{i / kTileRows} * depth_blocks + t) * kTileValues;
                uint32_t* column = reinterpret_cast<uint32_t*>(tile) + i % kTileRows;
                _mm512_i32scatter_epi32(column, tile_rows, _mm512_loadu_si512(b.key + t * kDepth), 4);
            }
        }
        // v: rows 2p and 2p + 1 interleaved, 16 of head_dim at a time, into row p of a tile
        // (head_dim block j / 16, key block of 32).
        const int key_blocks = b.key_depth / kDepth;
        const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
                                                    4, 19, 3, 18, 2, 17, 1, 16, 0);
        for (int key = 0; key < b.key_depth; key += 2) {
            for (int j = 0; j < d; j += kTileRows) {
                // Lanes 0–15 from row `key`, 16–31 from row key + 1, zeros past the last key.
                const uint16_t* even = b.v_rows + int64_t{std::min(key, length - 1)} * d + j;
                const uint16_t* odd = b.v_rows + int64_t{std::min(key + 1, length - 1)} * d + j;
                __m512i both = _mm512_maskz_loadu_epi16(key < length ? 0x0000FFFFu : 0u, even);
                both = _mm512_mask_loadu_epi16(both, key + 1 < length ? 0xFFFF0000u : 0u, odd - kTileRows);
                const int64_t tile = int64_t{j / kTileRows} * key_blocks + key / kDepth;
                _mm512_storeu_si512(b.v + tile * kTileValues + (key % kDepth / 2) * kDepth, _mm512_permutexvar_epi16(interleave, both));
            }
        }
    }

    // scores = q·kᵀ, by rows of 16 queries; under a causal mask the tiles wholly above the
    // diagonal are not computed (softmax does not read them).
    MCLIP_AMX_BF16 void scores(const HeadBuffers& b) const {
        const int d = desc_.head_dim, depth_blocks = d / kDepth;
        const auto k_tile = [&](int kb, int depth) { return b.k + (int64_t{kb} * depth_blocks + depth) * kTileValues; };
        for (int qb = 0; qb < b.queries / kTileRows; ++qb) {
            tile_row(b.q + int64_t{qb} * kTileRows * d, d * sizeof(uint16_t), depth_blocks, k_tile,
                     desc_.causal ? qb + 1 : b.key_columns / kTileRows, b.scores + int64_t{qb} * kTileRows * b.key_columns,
                     b.key_columns * sizeof(float));
        }
    }

    MCLIP_AMX_BF16 void softmax(HeadBuffers& b, int length) const {
        const float scale = 1.0f / std::sqrt(static_cast<float>(desc_.head_dim));
        for (int i = 0; i < length; ++i) {
            softmax_row(b.scores + int64_t{i} * b.key_columns, desc_.causal ? i + 1 : length, scale, b.p + int64_t{i} * b.key_depth,
                        b.key_depth);
        }
        std::memset(b.p + int64_t{length} * b.key_depth, 0, sizeof(uint16_t) * (b.queries - length) * b.key_depth);
    }

    // out = p·v, by rows of 16 queries; under a causal mask the keys past a row's last query
    // have probability 0 and are skipped.
    MCLIP_AMX_BF16 void weighted_sum(const HeadBuffers& b) const {
        const int d = desc_.head_dim, key_blocks = b.key_depth / kDepth;
        const auto v_tile = [&](int j, int kb) { return b.v + (int64_t{j} * key_blocks + kb) * kTileValues; };
        for (int qb = 0; qb < b.queries / kTileRows; ++qb) {
            const int used_blocks = desc_.causal ? std::min(key_blocks, ((qb + 1) * kTileRows - 1) / kDepth + 1) : key_blocks;
            tile_row(b.p + int64_t{qb} * kTileRows * b.key_depth, b.key_depth * sizeof(uint16_t), used_blocks, v_tile, d / kTileRows,
                     b.out + int64_t{qb} * kTileRows * d, d * sizeof(float));
        }
    }

    // The head's rows into out [n, length, heads·head_dim].
    MCLIP_AMX_BF16 void store(const HeadBuffers& b, int sequence, int head, int length, void* out) const {
        const int d = desc_.head_dim, width = desc_.heads * d;
        for (int i = 0; i < length; ++i) {
            const int64_t at = (int64_t{sequence} * length + i) * width + int64_t{head} * d;
            const float* row = b.out + int64_t{i} * d;
            if (desc_.output == DType::bf16) {
                for (int j = 0; j < d; j += 32) {
                    const __m512bh rounded = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + j + 16), _mm512_loadu_ps(row + j));
                    _mm512_storeu_si512(static_cast<uint16_t*>(out) + at + j, reinterpret_cast<const __m512i&>(rounded));
                }
            } else {
                std::memcpy(static_cast<float*>(out) + at, row, d * sizeof(float));
            }
        }
    }
};

}  // namespace

bool handles_attention(const AttentionDesc& desc) {
    return (desc.precision == Precision::bf16 || desc.precision == Precision::int8) && desc.heads > 0 && desc.head_dim > 0 &&
           desc.head_dim % kDepth == 0 && (desc.input == DType::f32 || desc.input == DType::bf16) &&
           (desc.output == DType::f32 || desc.output == DType::bf16) && usable(false);
}

std::unique_ptr<Attention> make_attention(const AttentionDesc& desc) { return std::make_unique<AmxAttention>(desc); }

}  // namespace mclip::kernels::amx
