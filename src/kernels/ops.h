// Element-wise, normalization, pooling and attention operators shared by every backend.
// Images are NHWC, so a batch item's image is a [spatial, channels] matrix (kernels.h).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "tensor/tensor.h"

namespace mclip::kernels {

// gelu(x) = 0.5·x·(1 + erf(x/√2)), the exact form PyTorch's nn.GELU() uses.
void gelu_inplace(float* x, int64_t count);
void gelu_inplace_bf16(uint16_t* x, int64_t count);
// The epilogue of a block of products that feeds a bf16 layer, on the calling thread:
// y[r, j] = bf16(activation(x[r, j] + bias[j])) for x [rows, cols] (float32), rows of y y_stride
// apart. Activation none or GELU (Error(internal) otherwise); the GELU is gelu_inplace's.
void bias_activation_to_bf16(const float* x, int rows, int cols, const float* bias, Activation activation, uint16_t* y, int64_t y_stride);
// quick_gelu(x) = x·sigmoid(1.702·x) (OpenAI CLIP's MLP activation).
void quick_gelu_inplace(float* x, int64_t count);
// x = activation(x), for the kernels that apply a layer's activation after its products.
void apply_activation(Activation activation, float* x, int64_t count);
// The same on the calling thread alone, for kernels inside their own parallel region, a block in
// cache at a time: there apply_activation's OpenMP region, though of one thread, costs 3–4 µs a
// call on a Zen 5 KVM guest, more than the GELU of an 8192-value row (the S0 stem's stride-2
// depthwise layer, a row at a time, two threads: 178 → 106 µs).
void apply_activation_serial(Activation activation, float* x, int64_t count);

// Signed 8-bit quantization (Precision::int8): q = clamp(round_half_even(v · (1/step)), -128, 127),
// multiplying by the inverse step as oneDNN's quantizing reorders do.
int8_t quantize_s8(float v, float inverse_step);
// x [positions, channels] (float32 or bf16, as x_type says) quantized channel by channel:
// y = quantize_s8(x, inverse_steps[c]) in one pass (an int8 layer's input, kernels.h).
void quantize_channels_s8(const void* x, DType x_type, int64_t positions, int channels, const float* inverse_steps, int8_t* y);
// The step that maps a calibrated range onto [-127, 127].
inline float int8_step(float range) { return range / 127.0f; }
// The inverse steps quantize_channels_s8 takes for an input calibrated to `range`: 1 / (step · s_c)
// with s_c the channel's smoothing factor (ConvDesc::input_smoothing), 1 / step for every channel
// when there are none.
std::vector<float> int8_inverse_steps(float range, const std::vector<float>& smoothing, int channels);
// A weight matrix [rows, cols] (row = output channel) quantized row by row: each row's largest
// |w| maps to ±127 (an all-zero row gets step 1). With even_levels, onto the even levels of
// [−126, 126] instead (the largest |w| at ±126, seven bits): for int8 kernels that halve the
// weights (without VNNI, oneDNN keeps vpmaddubsw's 16-bit pair sums from saturating so). Even
// levels halve exactly; 8-bit levels would be rounded a second time, which adds about 75% to the
// weights' quantization noise (variance).
struct RowQuantized {
    std::vector<int8_t> values;  // [rows, cols]
    std::vector<float> steps;    // [rows]
};
RowQuantized quantize_rows_s8(const float* w, int64_t rows, int64_t cols, bool even_levels = false);
// Weights [out, in, ...] (float32) with each input channel c multiplied by smoothing[c]: the
// weight side of ConvDesc::input_smoothing. Depthwise weights [out, 1, ...] with a factor per
// input channel: output channel o by smoothing[o / (out / in)].
Tensor smooth_input_channels(const Tensor& weight, const std::vector<float>& smoothing);

// y += x, element-wise.
void add_inplace(float* y, const float* x, int64_t count);

// Buffer element conversions (bf16 as raw bits, round to nearest even).
void f32_to_bf16(const float* x, uint16_t* y, int64_t count);
void bf16_to_f32(const uint16_t* x, float* y, int64_t count);

// y = values, or y += values when `accumulate`, with y float32 or bfloat16 (y_type).
void store_f32(const float* values, int64_t count, void* y, DType y_type, bool accumulate);

// LayerNorm over the last dimension: y = (x − mean) / sqrt(var + eps) · w + b (biased variance).
// y is float32 or bfloat16 (y_type).
void layer_norm(const float* x, int64_t rows, int64_t width, const float* weight, const float* bias, float eps, void* y,
                DType y_type = DType::f32);

// Multi-head attention on packed projections, for one sequence:
//   qkv [length, 3·heads·head_dim] holding [q | k | v], each head-major;
//   out [length, heads·head_dim] = concat_h softmax(q_h·scale · k_hᵀ + mask) v_h, scale = head_dim^-½.
// With causal, position i attends to j <= i only. The portable version of kernels::Attention:
// scores exist for one head at a time per thread ([length, length]); nothing larger is stored.
void multi_head_attention(const float* qkv, int length, int heads, int head_dim, bool causal, float* out);

// Softmax of attention scores [groups, length, length] (rows: queries, columns: keys), in place,
// also written to p as float32 or bfloat16 (p may be scores itself when float32). With causal,
// query i keeps keys j <= i and the rest become 0.
void attention_softmax(float* scores, int64_t groups, int length, bool causal, void* p, DType p_type);

// out[c] = mean over positions of x [spatial, channels] (one NHWC image).
void global_average_pool(const float* x, int64_t spatial, int channels, float* out);

// Squeeze-and-excitation gates from pooled means m [channels]:
//   gate = sigmoid(W2·relu(W1·m + b1) + b2), W1 [reduced, channels], W2 [channels, reduced].
void squeeze_excite_gates(const float* pooled, int channels, const float* w1, const float* b1, int reduced,
                          const float* w2, const float* b2, float* gates);

// x [spatial, channels] ⊙= gate (per channel), then GELU when `gelu`; one pass over x.
void scale_channels(float* x, int64_t spatial, int channels, const float* gates, bool gelu);

// y[rows, out] = x[rows, in] · P[in, out] (the projection matrices of CLIP heads, stored [in, out]).
void matmul_in_out(const float* x, int64_t rows, int64_t in, const float* p, int64_t out, float* y);

// Layout changes of a batch of images: [n, c, h, w] ↔ [n, h, w, c].
void nchw_to_nhwc(const float* x, int n, int c, int h, int w, float* y);
void nhwc_to_nchw(const float* x, int n, int c, int h, int w, float* y);

}  // namespace mclip::kernels
