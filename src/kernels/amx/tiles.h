// What code that runs on AMX tiles (kernels/amx, the peak loop) needs: whether it may, and the
// tile configuration it loads.
#pragma once

#include <cstdint>

// What the functions that touch tiles are compiled for; they run only where usable() (every CPU
// with AMX-BF16 has AVX-512 and AVX512-BF16 too, and usable checks).
#define MCLIP_AMX_BF16 __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

namespace mclip::kernels::amx {

// The 64-byte operand of ldtilecfg (palette 1): each of the 8 tiles' rows and bytes per row.
struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t bytes_per_row[16] = {};
    uint8_t rows[16] = {};
};

// Whether this CPU has AMX-TILE and AMX-BF16 (int8: AMX-INT8), from CPUID leaf 7 (EDX bits 24,
// 22, 25: Clang 14's __builtin_cpu_supports does not know them) with AVX512-BF16 (leaf 7.1, EAX
// bit 5), and Linux lets this process use the tile registers (asked once per process with
// arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, as oneDNN does).
bool usable(bool int8);

// Configures all 8 tiles as 16 rows of 64 bytes, the shape of every operand and product in
// kernels/amx, on the calling thread (a thread's tile configuration is its own state).
void configure_whole_tiles();

}  // namespace mclip::kernels::amx
