#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

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

TEST(AlignedMemory, ZeroBytesStillGiveAPointer) {
    void* p = allocate_aligned(0);
    EXPECT_NE(p, nullptr);
    std::free(p);
}
