// A 1×1 convolution of a float32 input computing in bf16 with AVX512-BF16 (vdpbf16ps), NHWC, in
// one pass: the input converted to bf16 a block of positions at a time, the products, bias,
// activation and residual, and the output stored as float32 or bf16.
//
// oneDNN 2.6 runs such a layer as three passes, each its own parallel region: a reorder of x to
// bf16, brgconv_1x1 and, since its fused GELU is slower, a separate GELU pass. On an AMD EPYC Zen 5
// (two threads) the MCi stem's 1×1 layer and the downsampling layers' (16.8 M multiply-adds each in
// S0) took 100–200 µs each that way inside the encoder; here 75–150 µs (docs/performance.md). With
// a bf16 input (the ConvFFN layers of bf16 models) brgconv_1x1 reads x as it is, and was 5% faster
// than this kernel on those layers.
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes `desc`: a 1×1 convolution (stride 1, no padding, one group) that
// computes in bf16 (compute_precision), any input channel count, output channels a multiple of
// 16, float32 in, float32 or bf16 out, activation none or GELU, with or without a residual.
bool handles_bf16_pointwise(const ConvDesc& desc);

// The layer, its weights repacked. Requires bf16_supported() (cpu.h) and handles_bf16_pointwise().
std::unique_ptr<Conv2d> make_bf16_pointwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias);

}  // namespace mclip::kernels::avx512
