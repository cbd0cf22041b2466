// A ConvFFN block (kernels.h, DepthwiseFfn) in int8 on AVX512-VNNI: the int8 depthwise kernel
// writes its output as the unsigned levels the int8 FFN quantizes its input to, and the FFN
// multiplies them as they are. Apart, the depthwise layer wrote two or four bytes a value and
// the FFN read them back in a pass that quantized them; the levels are one byte, computed from
// the same rounded values, so the results are the same bit for bit (docs/performance.md has the
// measurements).
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes the block: the int8 depthwise kernel takes `depthwise` without a
// residual (handles_int8_depthwise), the int8 FFN kernel takes `ffn` (handles_int8_pointwise_ffn),
// with the depthwise layer's channels and output type the FFN's.
bool handles_int8_depthwise_ffn(const ConvDesc& depthwise, const PointwiseFfnDesc& ffn);

// The block, the weights as make_int8_depthwise_conv2d and make_int8_pointwise_ffn take them.
// Requires handles_int8_depthwise_ffn(depthwise, ffn).
std::unique_ptr<DepthwiseFfn> make_int8_depthwise_ffn(const ConvDesc& depthwise, const Tensor& depthwise_weight, const Tensor& depthwise_bias,
                                                      const PointwiseFfnDesc& ffn, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                      const Tensor& b2);

}  // namespace mclip::kernels::avx512
