// Element-wise, normalization and attention operators shared by every backend.
#pragma once

#include <cstdint>

namespace mclip::kernels {

// gelu(x) = 0.5·x·(1 + erf(x/√2)), the exact form PyTorch's nn.GELU() uses.
void gelu_inplace(float* x, int64_t count);
void relu_inplace(float* x, int64_t count);

// y += x, element-wise.
void add_inplace(float* y, const float* x, int64_t count);

// LayerNorm over the last dimension: y = (x − mean) / sqrt(var + eps) · w + b (biased variance).
void layer_norm(const float* x, int64_t rows, int64_t width, const float* weight, const float* bias, float eps, float* y);

// In-place softmax over each row of [rows, width].
void softmax_rows_inplace(float* x, int64_t rows, int64_t width);

// Multi-head attention on packed projections, for one sequence:
//   qkv [length, 3·heads·head_dim] holding [q | k | v], each head-major;
//   out [length, heads·head_dim] = concat_h softmax(q_h·scale · k_hᵀ + mask) v_h
// With causal, position i attends to j <= i only.
void multi_head_attention(const float* qkv, int length, int heads, int head_dim, bool causal, float* out);

// Squeeze-and-excitation gate on x [channels, spatial] in place:
//   m = mean over spatial; u = sigmoid(W2·relu(W1·m + b1) + b2); x *= u (per channel).
// W1 [reduced, channels], W2 [channels, reduced].
void squeeze_excite_inplace(float* x, int channels, int64_t spatial, const float* w1, const float* b1, int reduced,
                            const float* w2, const float* b2);

// out[c] = mean over spatial of x [channels, spatial].
void global_average_pool(const float* x, int channels, int64_t spatial, float* out);

// y[rows, out] = x[rows, in] · P[in, out] (the projection matrices of CLIP heads, stored [in, out]).
void matmul_in_out(const float* x, int64_t rows, int64_t in, const float* p, int64_t out, float* y);

}  // namespace mclip::kernels
