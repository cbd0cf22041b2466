// Multi-head self-attention (kernels.h, Attention) on AMX tiles, in bf16.
//
// oneDNN 2.6 has only its float32 gemm kernels for the strided operands of attention (q, k and v
// read in place from the packed projections): 50–120 GMAC/s on two threads of the AMX Xeon, a
// fifth of the text encoders' time in bf16 and int8. Here each thread takes whole (sequence,
// head) pairs: q, k and v of the head packed into bf16 tiles, the scores into float32 tiles, the
// softmax in float32 rounded to bf16 probabilities, and their product with v into float32 tiles.
#pragma once

#include <memory>

#include "kernels/kernels.h"

namespace mclip::kernels::amx {

// Whether the kernel computes `desc`: bf16 products (precision bf16, or int8 whose companion is
// bf16), heads 32 or a multiple of 32 wide, float32 or bf16 in and out; and the CPU has AMX-BF16
// (with AVX512-BF16) that this process may use.
bool handles_attention(const AttentionDesc& desc);

// Requires handles_attention(desc).
std::unique_ptr<Attention> make_attention(const AttentionDesc& desc);

}  // namespace mclip::kernels::amx
