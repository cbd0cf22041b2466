// Aligned heap memory for tensors and scratch buffers. Blocks of 2 MiB and more are backed by
// transparent huge pages where the kernel offers them (MADV_HUGEPAGE): a model's first call touches
// tens of megabytes of fresh memory (weights converted and packed, activations), each 4 KiB page
// of it a page fault, costly in a virtual machine (S0's first call on a Zen 5 guest: 1,000 of its
// 12,000 faults fewer, 9 ms less).
#pragma once

#include <cstddef>

namespace mclip {

// At least `bytes` bytes (one when zero) aligned to 64 bytes, or to 2 MiB for large blocks;
// std::bad_alloc when out of memory. Released with std::free.
void* allocate_aligned(size_t bytes);

}  // namespace mclip
