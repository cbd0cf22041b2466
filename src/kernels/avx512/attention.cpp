#include "kernels/avx512/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/avx512/softmax.h"
#include "kernels/avx512/vectors.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

constexpr int kScoreRows = 6;      // queries in a score tile
constexpr int kKeyVectors = 4;     // 16-key vectors in a score tile: 24 sums
constexpr int kQueryPadding = 24;  // queries are padded to a multiple of every tile's row count

int round_up(int n, int to) { return (n + to - 1) / to * to; }

// Per-thread buffers of one (sequence, head), float32, for `length` positions of a head
// `head_dim` wide. Rows past `length` hold zeros where a tile reads them.
struct HeadBuffers {
    int queries, keys;  // length rounded up to kQueryPadding, and to 16 (a row of scores)
    float* q;           // [queries, head_dim]
    float* kt;          // [head_dim, keys]: kᵀ, a vector of 16 keys per load
    float* v;           // [length, head_dim]
    float* p;           // [queries, keys]: the scores, then the probabilities
    float* out;         // [queries, head_dim]

    HeadBuffers(Workspace& ws, int length, int head_dim) : queries(round_up(length, kQueryPadding)), keys(round_up(length, kLanes)) {
        q = ws.floats(0, int64_t{queries} * head_dim);
        kt = ws.floats(1, int64_t{head_dim} * keys);
        v = ws.floats(2, int64_t{length} * head_dim);
        p = ws.floats(3, int64_t{queries} * keys);
        out = ws.floats(4, int64_t{queries} * head_dim);
    }
};

// `count` values (a multiple of 16) of a float32 or bf16 buffer from `offset` on, as float32.
MCLIP_AVX512 inline void widen(const void* values, DType type, int64_t offset, int count, float* to) {
    if (type == DType::f32) {
        const float* from = static_cast<const float*>(values) + offset;
        for (int j = 0; j < count; j += kLanes) _mm512_storeu_ps(to + j, _mm512_loadu_ps(from + j));
    } else {
        const uint16_t* from = static_cast<const uint16_t*>(values) + offset;
        for (int j = 0; j < count; j += kLanes) _mm512_storeu_ps(to + j, load16(from + j, kAllLanes));
    }
}

// Column `column` of 16 rows of a float32 or bf16 matrix (rows `stride` values apart, from
// `offset` on), the rows in `rows` only (zeros elsewhere), as float32: a row of kᵀ.
MCLIP_AVX512 inline __m512 gather_column(const void* values, DType type, int64_t offset, __m512i row_offsets, __mmask16 rows) {
    if (type == DType::f32) {
        return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows, row_offsets, static_cast<const float*>(values) + offset, sizeof(float));
    }
    // Each lane reads the 32-bit word whose low half is the bf16 value, and keeps that half.
    const __m512i words = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, row_offsets,
                                                      static_cast<const uint16_t*>(values) + offset, sizeof(uint16_t));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAllLanes, words, 16));
}

// A score tile: p[r][16i, 16i + 16) = Σ_k q[r][k]·kᵀ[k][16i, 16i + 16) for kScoreRows rows r and
// V vectors i of keys; q's rows `depth` floats apart, kᵀ's and p's `keys`. Not inlined, so that
// the sums keep their registers.
template <int V>
[[gnu::noinline]] MCLIP_AVX512 void score_tile(const float* q, int depth, const float* kt, int keys, float* p) {
    __m512 sums[kScoreRows][V];
#pragma GCC unroll 6
    for (int r = 0; r < kScoreRows; ++r) {
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) sums[r][i] = _mm512_setzero_ps();
    }
    for (int k = 0; k < depth; ++k, kt += keys) {
        __m512 b[V];
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) b[i] = _mm512_loadu_ps(kt + kLanes * i);
#pragma GCC unroll 6
        for (int r = 0; r < kScoreRows; ++r) {
            const __m512 a = _mm512_set1_ps(q[r * depth + k]);
#pragma GCC unroll 4
            for (int i = 0; i < V; ++i) sums[r][i] = _mm512_fmadd_ps(a, b[i], sums[r][i]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < kScoreRows; ++r) {
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) _mm512_storeu_ps(p + int64_t{r} * keys + kLanes * i, sums[r][i]);
    }
}

// A tile of the output: out[r][16i, 16i + 16) = Σ_{j < used} p[r][j]·v[j][16i, 16i + 16) for R
// rows r and V vectors i of a head's columns; p's rows `keys` floats apart, v's and out's `depth`.
template <int R, int V>
[[gnu::noinline]] MCLIP_AVX512 void weighted_tile(const float* p, int keys, int used, const float* v, int depth, float* out) {
    __m512 sums[R][V];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) sums[r][i] = _mm512_setzero_ps();
    }
    for (int j = 0; j < used; ++j, v += depth) {
        __m512 b[V];
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) b[i] = _mm512_loadu_ps(v + kLanes * i);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m512 a = _mm512_set1_ps(p[int64_t{r} * keys + j]);
#pragma GCC unroll 4
            for (int i = 0; i < V; ++i) sums[r][i] = _mm512_fmadd_ps(a, b[i], sums[r][i]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int i = 0; i < V; ++i) _mm512_storeu_ps(out + int64_t{r} * depth + kLanes * i, sums[r][i]);
    }
}

using ScoreTile = void (*)(const float*, int, const float*, int, float*);
using WeightedTile = void (*)(const float*, int, int, const float*, int, float*);
// By vector count: score tiles of kScoreRows rows; output tiles of about 24 sums, with rows that
// divide kQueryPadding.
const ScoreTile kScoreTiles[] = {nullptr, score_tile<1>, score_tile<2>, score_tile<3>, score_tile<4>};
const WeightedTile kWeightedTiles[] = {nullptr, weighted_tile<12, 1>, weighted_tile<12, 2>, weighted_tile<8, 3>, weighted_tile<6, 4>};
constexpr int kWeightedRows[] = {0, 12, 12, 8, 6};

class Avx512Attention final : public Attention {
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
    MCLIP_AVX512 void run_pairs(const void* qkv, int n, int length, void* out) const {
        thread_local Workspace scratch;
        HeadBuffers b(scratch, length, desc_.head_dim);
        const int64_t pairs = int64_t{n} * desc_.heads;
#pragma omp for schedule(static)
        for (int64_t pair = 0; pair < pairs; ++pair) {
            const int sequence = static_cast<int>(pair / desc_.heads), head = static_cast<int>(pair % desc_.heads);
            pack(qkv, sequence, head, length, b);
            scores(b, length);
            softmax(b, length);
            weighted_sum(b, length);
            store(b, sequence, head, length, out);
        }
    }

    // q, kᵀ and v of one head into float32 buffers, zeros in q's rows and kᵀ's columns past `length`.
    MCLIP_AVX512 void pack(const void* qkv, int sequence, int head, int length, HeadBuffers& b) const {
        const int d = desc_.head_dim, width = desc_.heads * d;
        const int64_t first_row = int64_t{sequence} * length * 3 * width + int64_t{head} * d;
        for (int i = 0; i < length; ++i) {
            const int64_t row = first_row + int64_t{i} * 3 * width;
            widen(qkv, desc_.input, row, d, b.q + int64_t{i} * d);
            widen(qkv, desc_.input, row + 2 * width, d, b.v + int64_t{i} * d);
        }
        std::memset(b.q + int64_t{length} * d, 0, sizeof(float) * (b.queries - length) * d);
        const __m512i row_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                       _mm512_set1_epi32(3 * width));
        for (int key = 0; key < b.keys; key += kLanes) {
            const __mmask16 rows = lanes_below(key, length);
            const int64_t block = first_row + int64_t{key} * 3 * width + width;
            for (int k = 0; k < d; ++k) _mm512_storeu_ps(b.kt + int64_t{k} * b.keys + key, gather_column(qkv, desc_.input, block + k, row_offsets, rows));
        }
    }

    // p = q·kᵀ by tiles; under a causal mask the key vectors wholly past a tile's last query are
    // not computed (the softmax does not read them).
    MCLIP_AVX512 void scores(const HeadBuffers& b, int length) const {
        const int d = desc_.head_dim;
        for (int first = 0; first < length; first += kScoreRows) {
            const int last_query = std::min(first + kScoreRows, length) - 1;
            for (int key = 0; key < b.keys; key += kKeyVectors * kLanes) {
                if (desc_.causal && key > last_query) break;
                const int vectors = std::min(kKeyVectors, (b.keys - key) / kLanes);
                kScoreTiles[vectors](b.q + int64_t{first} * d, d, b.kt + key, b.keys, b.p + int64_t{first} * b.keys + key);
            }
        }
    }

    // Each row of scores into its probabilities, zeros past its visible keys and in the padding rows.
    MCLIP_AVX512 void softmax(HeadBuffers& b, int length) const {
        const float scale = 1.0f / std::sqrt(static_cast<float>(desc_.head_dim));
        for (int i = 0; i < length; ++i) {
            float* row = b.p + int64_t{i} * b.keys;
            const int visible = desc_.causal ? i + 1 : length;
            const __m512 inverse = softmax_exponentials(row, visible, scale);
            for (int j = 0; j < b.keys; j += kLanes) {
                const __mmask16 kept = lanes_below(j, visible);
                _mm512_storeu_ps(row + j, _mm512_maskz_mul_ps(kept, _mm512_maskz_loadu_ps(kept, row + j), inverse));
            }
        }
        std::memset(b.p + int64_t{length} * b.keys, 0, sizeof(float) * (b.queries - length) * b.keys);
    }

    // out = p·v by tiles of rows and up to 64 columns; under a causal mask a tile stops at the
    // keys its last row sees.
    MCLIP_AVX512 void weighted_sum(const HeadBuffers& b, int length) const {
        const int d = desc_.head_dim;
        for (int column = 0; column < d; column += kKeyVectors * kLanes) {
            const int vectors = std::min(kKeyVectors, (d - column) / kLanes), rows = kWeightedRows[vectors];
            for (int first = 0; first < length; first += rows) {
                const int used = desc_.causal ? std::min(length, first + rows) : length;
                kWeightedTiles[vectors](b.p + int64_t{first} * b.keys, b.keys, used, b.v + column, d, b.out + int64_t{first} * d + column);
            }
        }
    }

    // The head's rows into out [n, length, heads·head_dim].
    MCLIP_AVX512 void store(const HeadBuffers& b, int sequence, int head, int length, void* out) const {
        const int d = desc_.head_dim, width = desc_.heads * d;
        const size_t element = dtype_size(desc_.output);
        for (int i = 0; i < length; ++i) {
            const int64_t at = (int64_t{sequence} * length + i) * width + int64_t{head} * d;
            store_f32(b.out + int64_t{i} * d, d, static_cast<char*>(out) + at * element, desc_.output, false);
        }
    }
};

}  // namespace

bool handles_attention(const AttentionDesc& desc) {
    return desc.heads > 0 && desc.head_dim > 0 && desc.head_dim % kLanes == 0 && (desc.input == DType::f32 || desc.input == DType::bf16) &&
           (desc.output == DType::f32 || desc.output == DType::bf16) && cpu_supported();
}

std::unique_ptr<Attention> make_attention(const AttentionDesc& desc) { return std::make_unique<Avx512Attention>(desc); }

}  // namespace mclip::kernels::avx512
