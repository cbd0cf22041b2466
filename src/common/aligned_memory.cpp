#include "common/aligned_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace mclip {

void* allocate_aligned(size_t bytes) {
    constexpr size_t cache_line = 64;
    constexpr size_t huge_page = size_t{2} << 20;
    if (bytes < huge_page) {
        void* p = nullptr;
        if (posix_memalign(&p, cache_line, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
        return p;
    }
    // A partial last huge page only where the block uses at least half of it: one backs up to
    // 2 MiB the block may not use (MobileCLIP-B's image encoder has 24 blocks of packed weights of
    // 2.4 MB: 40 MiB more resident with theirs), and a tail on small pages costs a fault per 4 KiB
    // (S0's image encoder has 22 blocks of 3 MiB: 5,900 faults, 60–120 ms of its cold start).
    const size_t whole = bytes / huge_page * huge_page;
    const size_t advised = bytes - whole >= huge_page / 2 ? whole + huge_page : whole;
    void* p = nullptr;
    if (posix_memalign(&p, huge_page, std::max(bytes, advised)) != 0) throw std::bad_alloc();
    // Advice only: without transparent huge pages (or where they are disabled) nothing changes.
    madvise(p, advised, MADV_HUGEPAGE);
    return p;
}

}  // namespace mclip
