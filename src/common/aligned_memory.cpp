#include "common/aligned_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace mclip {

void* allocate_aligned(size_t bytes) {
    constexpr size_t cache_line = 64;
    constexpr size_t huge_page = size_t{2} << 20;
    const size_t alignment = bytes >= huge_page ? huge_page : cache_line;
    const size_t rounded = bytes == 0 ? alignment : (bytes + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded);
    if (!p) throw std::bad_alloc();
    // Advice only: without transparent huge pages (or where they are disabled) nothing changes.
    if (alignment == huge_page) madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

}  // namespace mclip
