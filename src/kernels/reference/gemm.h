// The reference backend's matrix multiply, shared by its convolutions and linear layers.
#pragma once

#include <cstdint>

namespace mclip::kernels::reference {

// C[M, N] = A[M, K] · B[K, N] (+ C when accumulate), all row-major with leading dimensions.
// Parallel over rows of C with OpenMP; the inner loops are compiled for several instruction
// sets and picked at run time (function multi-versioning), so one binary runs anywhere.
void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool accumulate);

}  // namespace mclip::kernels::reference
