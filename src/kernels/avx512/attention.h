// Multi-head self-attention (kernels.h, Attention) in float32 on AVX-512, for CPUs without AMX.
//
// oneDNN 2.6 runs attention as two float32 matmuls over strided operands with a softmax pass
// between them, three parallel regions: on two threads of Zen 5, MCi's 64 positions × 16 heads
// of 32 took 88 µs for 4.2 M multiply-adds (47 GMAC/s, a fifth of the float32 peak), the text
// encoders' 77 × 8 × 64 112 µs. Here each thread takes whole (sequence, head) pairs in one region:
// the head's q, kᵀ and v copied into float32 buffers in its cache, the scores by register tiles
// of 6 queries × 64 keys, the softmax row by row, and the probabilities times v by tiles of
// queries × up to 64 columns.
#pragma once

#include <memory>

#include "kernels/avx512/cpu.h"
#include "kernels/kernels.h"

namespace mclip::kernels::avx512 {

// Whether the kernel computes `desc`: heads a multiple of 16 wide, float32 or bf16 in and out, in
// any precision (the products are float32), on a CPU with cpu_supported().
bool handles_attention(const AttentionDesc& desc);

// Requires handles_attention(desc).
std::unique_ptr<Attention> make_attention(const AttentionDesc& desc);

}  // namespace mclip::kernels::avx512
