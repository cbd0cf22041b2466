#include "kernels/amx/tiles.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mclip::kernels::amx {
namespace {

bool permitted() {
    static const bool granted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    return granted;
}

}  // namespace

bool usable(bool int8) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tiles = edx & (1u << 24);
    const bool products = edx & (1u << (int8 ? 25 : 22));
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
    const bool avx512_bf16 = eax & (1u << 5);
    return tiles && products && avx512_bf16 && permitted();
}

// The configuration lives in static storage: GCC 12 does not see ldtilecfg read its operand, and
// dropped the zeroing of a local one's unused fields (garbage there makes ldtilecfg fault).
__attribute__((target("amx-tile"))) void configure_whole_tiles() {
    static const TileConfig whole = [] {
        TileConfig config;
        for (int t = 0; t < 8; ++t) {
            config.rows[t] = 16;
            config.bytes_per_row[t] = 64;
        }
        return config;
    }();
    _tile_loadconfig(&whole);
}

}  // namespace mclip::kernels::amx
