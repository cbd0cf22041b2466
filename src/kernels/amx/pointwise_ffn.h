// The pointwise half of a ConvFFN (kernels.h, PointwiseFfn) on AMX tiles, in bf16.
//
// oneDNN runs it as two 1×1 convolutions and a GELU pass between them: the hidden layer (3× the
// channels) is written out in bf16, read and written by GELU and read again, and each of the
// three steps is a parallel region of its own. Here each thread takes blocks of 32 positions and
// carries them through both products: fc1 into tiles, bias and GELU on the float32 tiles, the
// bf16 hidden block in a per-thread buffer, fc2 from it, bias and the residual added into y.
#pragma once

#include <memory>

#include "kernels/kernels.h"

namespace mclip::kernels::amx {

// Whether the kernel computes `desc`: bf16 products, bf16 input, GELU or no activation; and the
// CPU has AMX-BF16 that this process may use. (Counts that are not multiples of 32 cost the
// products of the zeros they are padded with.)
bool handles_pointwise_ffn(const PointwiseFfnDesc& desc);

// Whether the weights are small enough (1.5 MB in bf16) for the work to be shared by
// blocks of positions, each block through both products on one thread (pointwise_ffn.cpp).
bool shares_by_blocks(const PointwiseFfnDesc& desc);

// w1 [hidden, channels(, 1, 1)], w2 [channels, hidden(, 1, 1)]: packed into bf16 tiles.
// Requires handles_pointwise_ffn(desc).
std::unique_ptr<PointwiseFfn> make_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                 const Tensor& b2);

}  // namespace mclip::kernels::amx
