#include "kernels/reference/gemm.h"

#include <algorithm>
#include <cstring>

namespace mclip::kernels::reference {
namespace {

constexpr int64_t kRowBlock = 4;     // rows of C computed together, sharing each load of B
constexpr int64_t kColumnBlock = 512;  // columns of C kept hot in L1/L2 across the k loop

// C[rows, cols] (+)= A[rows, K] · B[K, cols] for up to kRowBlock rows and kColumnBlock columns.
__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void gemm_block(int64_t rows, int64_t cols, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                float* c, int64_t ldc) {
    if (rows == kRowBlock) {
        float* c0 = c;
        float* c1 = c + ldc;
        float* c2 = c + 2 * ldc;
        float* c3 = c + 3 * ldc;
        for (int64_t p = 0; p < k; ++p) {
            const float a0 = a[p], a1 = a[lda + p], a2 = a[2 * lda + p], a3 = a[3 * lda + p];
            const float* bp = b + p * ldb;
            for (int64_t j = 0; j < cols; ++j) {
                const float bj = bp[j];
                c0[j] += a0 * bj;
                c1[j] += a1 * bj;
                c2[j] += a2 * bj;
                c3[j] += a3 * bj;
            }
        }
        return;
    }
    for (int64_t i = 0; i < rows; ++i) {
        float* ci = c + i * ldc;
        for (int64_t p = 0; p < k; ++p) {
            const float ai = a[i * lda + p];
            const float* bp = b + p * ldb;
            for (int64_t j = 0; j < cols; ++j) ci[j] += ai * bp[j];
        }
    }
}

}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool accumulate) {
    const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
    const int64_t column_blocks = (n + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k > (1 << 16))
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
        for (int64_t cb = 0; cb < column_blocks; ++cb) {
            const int64_t i0 = rb * kRowBlock;
            const int64_t j0 = cb * kColumnBlock;
            const int64_t rows = std::min(kRowBlock, m - i0);
            const int64_t cols = std::min(kColumnBlock, n - j0);
            if (!accumulate) {
                for (int64_t i = 0; i < rows; ++i) std::memset(c + (i0 + i) * ldc + j0, 0, cols * sizeof(float));
            }
            gemm_block(rows, cols, k, a + i0 * lda, lda, b + j0, ldb, c + i0 * ldc + j0, ldc);
        }
    }
}

}  // namespace mclip::kernels::reference
