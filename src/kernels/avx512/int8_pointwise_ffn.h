// The pointwise half of a ConvFFN (kernels.h, PointwiseFfn) in int8, on AVX512-VNNI.
//
// oneDNN 2.6 runs it as two int8 1×1 convolutions with passes between them: x quantized, the
// hidden layer (3× the channels) written out in bf16 with its GELU, quantized and read again.
// Its int8 1×1 kernels reach about 40% of the vpdpbusd peak on Zen 5 (docs/performance.md).
// Here each thread carries blocks of positions through both products: the block of x quantized
// into unsigned bytes (vpdpbusd multiplies unsigned by signed bytes, so the input carries a zero
// point of 128, whose share each sum starts from, negated), fc1 on register tiles of 6 positions ×
// 64 outputs, its sums dequantized, biased, through GELU and quantized again into the hidden
// block, fc2 from it, and its result added into y.
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes `desc`: int8 products with both inputs calibrated (input_range and
// hidden_range), float32 or bf16 input, GELU, QuickGELU or no activation, channel and hidden
// counts that are multiples of 16, on a CPU with vnni_supported() (cpu.h).
bool handles_int8_pointwise_ffn(const PointwiseFfnDesc& desc);

// The activation the kernel applies to the hidden layer (GELU by a table of cubics,
// int8_pointwise_ffn.cpp), on x[0, count) into y. Requires vnni_supported().
void hidden_activation(Activation activation, const float* x, int64_t count, float* y);

// w1 [hidden, channels(, 1, 1)], w2 [channels, hidden(, 1, 1)], smoothed and quantized per output
// channel (quantize_rows_s8) as oneDNN's int8 convolutions quantize them. Requires
// handles_int8_pointwise_ffn(desc).
std::unique_ptr<PointwiseFfn> make_int8_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                      const Tensor& b2);

// The same layer for an input already quantized: x holds one byte per value, its level for the
// desc's input quantization (input_range, input_smoothing) plus 128, as
// make_int8_depthwise_conv2d_to_levels writes them; desc.input names the type those levels were
// quantized from. Requires handles_int8_pointwise_ffn(desc).
std::unique_ptr<PointwiseFfn> make_int8_pointwise_ffn_of_levels(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1,
                                                                const Tensor& w2, const Tensor& b2);

}  // namespace mclip::kernels::avx512
