// The MCi stem's first two convolutions as one operator, NHWC, float32 products on AVX-512: a
// dense 3×3 stride-2 convolution of the image's few channels, then a 3×3 stride-2 depthwise one.
//
// The first layer's output is the encoder's largest map (S0: 128×128×64 float32, 4 MiB, more than
// a core's L2 cache), written once and read once by a layer of 2.4 M multiply-adds: run apart, on
// two threads of Zen 5, that depthwise layer took 106 µs, a third of the first one's time. Here each
// thread computes the first layer's rows into a ring of three rows in its cache as the depthwise
// rows it owns need them, and the depthwise layer reads them there.
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes the pair: `first` a dense 3×3 convolution with stride 2 and padding
// 1 of 1–4 float32 input channels into a multiple of 16 channels; `second` a 3×3 depthwise one
// with stride 2 and padding 1 over those channels, float32 out; activations none or GELU, no
// residual; precisions float32 or bf16 (computed in float32: the first layer has too few
// products per byte for bf16 to gain, and the depthwise layers of int8 and bf16 models compute in
// float32 anyway).
bool handles_conv_pair(const ConvDesc& first, const ConvDesc& second);

// The pair, its weights repacked. Requires cpu_supported() (cpu.h) and handles_conv_pair().
std::unique_ptr<ConvPair> make_conv_pair(const ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias, const ConvDesc& second,
                                         const Tensor& second_weight, const Tensor& second_bias);

}  // namespace mclip::kernels::avx512
