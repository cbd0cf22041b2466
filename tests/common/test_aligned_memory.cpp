#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/aligned_memory.h"

using namespace mclip;

namespace {

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

TEST(AlignedMemory, SmallBlocksAreCacheLineAligned) {
    for (size_t bytes : {size_t{1}, size_t{63}, size_t{64}, size_t{1000}, (size_t{2} << 20) - 1}) {
        void* p = allocate_aligned(bytes);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(address(p) % 64, 0u) << bytes << " bytes";
        std::memset(p, 0xab, bytes);
        std::free(p);
    }
}

TEST(AlignedMemory, LargeBlocksStartOnAHugePage) {
    for (size_t bytes : {size_t{2} << 20, (size_t{5} << 20) + 3}) {
        auto* p = static_cast<unsigned char*>(allocate_aligned(bytes));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(address(p) % (size_t{2} << 20), 0u) << bytes << " bytes";
        std::memset(p, 0xcd, bytes);
        EXPECT_EQ(p[bytes - 1], 0xcd);
        std::free(p);
    }
}

namespace {

// The kernel's transparent huge page mode: "always", "madvise" or "never" ("" where unknown).
std::string huge_page_mode() {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    std::getline(in, line);
    const size_t open = line.find('['), close = line.find(']');
    return open == std::string::npos || close == std::string::npos ? "" : line.substr(open + 1, close - open - 1);
}

// Kilobytes of anonymous huge pages in the mappings that overlap [begin, end), from /proc/self/smaps.
long huge_page_kib(uintptr_t begin, uintptr_t end) {
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool overlaps = false;
    long total = 0;
    while (std::getline(smaps, line)) {
        unsigned long from = 0, to = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &from, &to) == 2 && line.find(':') > line.find(' ')) {
            overlaps = from < end && to > begin;
            continue;
        }
        long kib = 0;
        if (overlaps && std::sscanf(line.c_str(), "AnonHugePages: %ld kB", &kib) == 1) total += kib;
    }
    return total;
}

}  // namespace

// A block's last huge page, when the block uses less than half of it, stays on small pages:
// packed weights of 2.4 MB on two huge pages took 4 MiB each (MobileCLIP-B's image encoder: 40
// MiB more resident memory).
TEST(AlignedMemory, AMostlyUnusedLastHugePageIsNotAdvised) {
    if (huge_page_mode() != "madvise") GTEST_SKIP() << "transparent huge pages are not in madvise mode here ('" << huge_page_mode() << "')";
    constexpr size_t huge_page = size_t{2} << 20;
    const size_t bytes = huge_page + (size_t{512} << 10);
    auto* p = static_cast<unsigned char*>(allocate_aligned(bytes));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5a, bytes);
    EXPECT_LE(huge_page_kib(address(p), address(p) + 2 * huge_page), static_cast<long>(huge_page >> 10));
    std::free(p);
}

TEST(AlignedMemory, ZeroBytesStillGiveAPointer) {
    void* p = allocate_aligned(0);
    EXPECT_NE(p, nullptr);
    std::free(p);
}
