// Depthwise convolution, float32, NHWC, hand-written for AVX2 and FMA.
//
// oneDNN 2.6's AVX2 depthwise kernel (jit_dw) does not take every shape MobileCLIP has: the text
// encoder's 1×11 RepMixer over 77 tokens falls back to im2col + gemm:jit at about 0.6 GMAC/s,
// and channel multipliers above 1 to a generic grouped convolution. This kernel covers every
// depthwise shape with a channel multiplier of 1 or 2 (kernels.h: out = m·in), stride and padding
// included, with the bias, the activation and the residual add (ConvDesc::accumulate) applied
// while each output row is still in cache.
#pragma once

#include <memory>

#include "kernels/avx2/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx2 {

// Whether the kernel computes `desc`: a float32 depthwise convolution (float32 input, output and
// precision) with a channel multiplier of 1 or 2.
bool handles_depthwise(const ConvDesc& desc);

// The layer, with its weights repacked to [kh, kw, out_channels] (a vector of channels per tap).
// Requires cpu_supported() and handles_depthwise(desc).
std::unique_ptr<Conv2d> make_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias);

}  // namespace mclip::kernels::avx2
