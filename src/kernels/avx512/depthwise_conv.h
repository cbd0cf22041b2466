// Depthwise convolution, NHWC, hand-written for AVX-512: float32 products, float32 or bf16 in
// and out.
//
// oneDNN 2.6's AVX-512 depthwise kernel (brdgmm_dw) reads and writes float32 only, so the bf16
// output of a ConvFFN's depthwise layer costs a separate conversion pass, and its speed is uneven
// across MobileCLIP's shapes (bench_ops, two threads of the AMX Xeon, float32 peak 234 GMAC/s):
// 112 GMAC/s on the 7×7 layers at 64×64, 58 on the 3×3 ones at 16×16, 29 on the stride-2
// PatchEmbed layers with two output channels per input channel (run after repeating the input
// channels) and 18 on the stem's stride-2 3×3. This kernel keeps, for 16 channels, eight output
// columns in registers together with every input column they read along one kernel row, so each
// input vector is loaded (and widened from bf16) once per kernel row rather than once per tap;
// the bias, activation, conversion and residual add are applied while the row is in cache. With
// two output channels per input channel, each input vector serves both as it is loaded (four
// columns of each, interleaved into output order on the store): PatchEmbed's first layer of S0
// took 153 → 111 µs on one thread of Zen 5, 85 → 56 on two.
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes `desc`: a depthwise convolution in float32 precision (input and
// output float32 or bf16) with a channel multiplier of 1 or 2 and a kernel width and horizontal
// stride it is built for (3 or 7 wide with stride 1 or 2, 11 wide with stride 1).
bool handles_depthwise(const ConvDesc& desc);

// The layer, its weights repacked to [kh, kw, channels rounded up to 16] (for a channel multiplier
// of 2, per 16 input channels the even outputs' then the odd ones'). Requires
// cpu_supported() (cpu.h) and handles_depthwise(desc).
std::unique_ptr<Conv2d> make_depthwise_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias);

}  // namespace mclip::kernels::avx512
