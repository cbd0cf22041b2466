// Depthwise convolution in int8 on AVX512-VNNI, for the "same" convolutions with stride 1, one
// output channel per input channel and kernels of 5 to 11 on a side: MobileCLIP's ConvFFN 7×7.
//
// vpdpbusd sums four byte products into each 32-bit lane, four times the multiply-adds of an FMA
// per instruction. Here a lane carries one channel and four horizontally adjacent taps: each input
// row of a block of 16 channels is rewritten once, as quads whose entry i holds the bytes of
// columns i..i+3, so that a 7-wide kernel row takes two vpdpbusd per output (the fourth weight of
// the second zero) instead of seven FMAs. Two output rows are computed together, each quad loaded
// serving both: on Zen 5, 512-bit loads rather than the products bound the inner loop.
//
// A channel meets only its own weights, so the input is quantized per channel: calibration gives
// depthwise layers smoothing factors that bring every channel's range to the largest
// (calibration.h), and the per-tensor step of the smoothed input is then a step per channel. The
// centre tap multiplies the float32 input (kernels.h, int8_capable).
#pragma once

#include <memory>
#include <vector>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes `desc`: a calibrated int8 depthwise convolution (compute_precision
// int8: one output channel per input channel, stride 1, kernel sides of at least 5) with odd
// kernel sides of at most 11 padded to keep the size, no activation, float32 or bf16 input,
// float32 output (added into y or not) or bf16, on a CPU with vnni_supported().
bool handles_int8_depthwise(const ConvDesc& desc);

// The layer, its weights smoothed and quantized per channel (the centre tap apart) and packed as
// quads. Requires handles_int8_depthwise(desc).
std::unique_ptr<Conv2d> make_int8_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias);

// The same layer handing its output to an int8 layer as that layer would quantize it: y receives
// one byte per value, the level quantize_s8 (ops.h) gives the value (rounded to desc.output's type
// first) with output_inverse_steps [channels], plus 128 (the zero point of the unsigned bytes vpdpbusd
// takes). Requires handles_int8_depthwise(desc) and !desc.accumulate.
std::unique_ptr<Conv2d> make_int8_depthwise_conv2d_to_levels(const ConvDesc& desc, const Tensor& weight, const Tensor& bias,
                                                             const std::vector<float>& output_inverse_steps);

}  // namespace mclip::kernels::avx512
