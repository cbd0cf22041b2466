#include "kernels/reference/gemm.h"

#include <algorithm>
#include <cstring>

#include "common/target_clones.h"

namespace mclip::kernels::reference {
namespace {

// C is computed in tiles of kTileRows × kTileCols held in vector registers for the whole k loop:
// per k, one row of B (16 floats) is loaded and multiplied by kTileRows broadcast values of A.
// Six accumulators fit the 16 vector registers of AVX2 (as 12 halves) and leave room on AVX-512.
constexpr int kTileRows = 6;
constexpr int kTileCols = 16;

typedef float Vec16 __attribute__((vector_size(64)));

// The helpers below take and return 64-byte vectors; they are always inlined into each
// instruction-set clone, so no call ever passes one and the ABI note GCC gives does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

[[gnu::always_inline]] inline Vec16 load16(const float* p) {
    Vec16 v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

[[gnu::always_inline]] inline void store16(float* p, Vec16 v) { std::memcpy(p, &v, sizeof(v)); }

template <int Rows>
[[gnu::always_inline]] inline void full_width_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                            bool accumulate) {
    Vec16 acc[Rows];
    for (int r = 0; r < Rows; ++r) acc[r] = accumulate ? load16(c + r * ldc) : Vec16{};
    for (int64_t p = 0; p < k; ++p) {
        const Vec16 bp = load16(b + p * ldb);
        for (int r = 0; r < Rows; ++r) acc[r] += a[r * lda + p] * bp;
    }
    for (int r = 0; r < Rows; ++r) store16(c + r * ldc, acc[r]);
}

// Any tile of up to kTileRows × kTileCols (the ragged edges of C).
[[gnu::always_inline]] inline void edge_tile(int64_t rows, int64_t cols, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                      float* c, int64_t ldc, bool accumulate) {
    float acc[kTileRows][kTileCols];
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < cols; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : 0.0f;
    }
    for (int64_t p = 0; p < k; ++p) {
        const float* bp = b + p * ldb;
        for (int64_t r = 0; r < rows; ++r) {
            const float ar = a[r * lda + p];
            for (int64_t j = 0; j < cols; ++j) acc[r][j] += ar * bp[j];
        }
    }
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < cols; ++j) c[r * ldc + j] = acc[r][j];
    }
}

MCLIP_SIMD_CLONES
void gemm_tile(int64_t rows, int64_t cols, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, bool accumulate) {
    if (cols < kTileCols) {
        edge_tile(rows, cols, k, a, lda, b, ldb, c, ldc, accumulate);
        return;
    }
    switch (rows) {
        case 6: full_width_tile<6>(k, a, lda, b, ldb, c, ldc, accumulate); break;
        case 5: full_width_tile<5>(k, a, lda, b, ldb, c, ldc, accumulate); break;
        case 4: full_width_tile<4>(k, a, lda, b, ldb, c, ldc, accumulate); break;
        case 3: full_width_tile<3>(k, a, lda, b, ldb, c, ldc, accumulate); break;
        case 2: full_width_tile<2>(k, a, lda, b, ldb, c, ldc, accumulate); break;
        default: full_width_tile<1>(k, a, lda, b, ldb, c, ldc, accumulate); break;
    }
}

}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool accumulate) {
    const int64_t row_tiles = (m + kTileRows - 1) / kTileRows;
    const int64_t col_tiles = (n + kTileCols - 1) / kTileCols;
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k > (1 << 18))
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
        for (int64_t ct = 0; ct < col_tiles; ++ct) {
            const int64_t i0 = rt * kTileRows, j0 = ct * kTileCols;
            gemm_tile(std::min<int64_t>(kTileRows, m - i0), std::min<int64_t>(kTileCols, n - j0), k, a + i0 * lda, lda, b + j0, ldb,
                      c + i0 * ldc + j0, ldc, accumulate);
        }
    }
}

}  // namespace mclip::kernels::reference
