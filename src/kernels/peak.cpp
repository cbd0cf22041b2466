#include "kernels/peak.h"

#include <immintrin.h>

#include "kernels/amx/tiles.h"

namespace mclip::kernels {

namespace {

// Twelve independent chains: enough to cover a 4-cycle FMA latency on two pipes with room to
// spare, and few enough to stay in the 16 registers of AVX2.
constexpr int kChains = 12;

// Makes the accumulators observable, so that the loops are not optimized away.
__attribute__((target("avx512f"))) void keep(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    volatile float sink = lanes[0];
    (void)sink;
}

__attribute__((target("avx2,fma"))) uint64_t f32_avx2(uint64_t iterations) {
    __m256 acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (uint64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
    volatile float sink = _mm256_cvtss_f32(sum);
    (void)sink;
    return iterations * kChains * 8;
}

__attribute__((target("avx512f"))) uint64_t f32_avx512(uint64_t iterations) {
    __m512 acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (uint64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
    keep(sum);
    return iterations * kChains * 16;
}

// vdpbf16ps: 32 bf16 products summed pairwise into 16 float32 lanes.
__attribute__((target("avx512f,avx512bf16"))) uint64_t bf16_avx512(uint64_t iterations) {
    __m512 acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_setzero_ps();
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(3e-3f), _mm512_set1_ps(4e-3f));
    for (uint64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
    keep(sum);
    return iterations * kChains * 32;
}

// vpdpbusd: 64 u8 × s8 products summed in fours into 16 int32 lanes.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) uint64_t int8_avx512(uint64_t iterations) {
    __m512i acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_setzero_si512();
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (uint64_t n = 0; n < iterations; ++n) {
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    }
    __m512i sum = acc[0];
    for (int i = 1; i < kChains; ++i) sum = _mm512_add_epi32(sum, acc[i]);
    keep(_mm512_castsi512_ps(sum));
    return iterations * kChains * 64;
}

// AMX: each tile instruction multiplies a 16×64-byte tile by another into a 16×16 float32 or
// int32 tile: 16·16·32 bf16 or 16·16·64 int8 multiply-adds. Four accumulator tiles over two A
// and two B tiles keep the unit busy; the values are irrelevant to the rate.
template <bool Int8>
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) uint64_t amx_loop(uint64_t iterations) {
    amx::configure_whole_tiles();
    alignas(64) uint8_t operand[16 * 64];
    for (uint8_t& byte : operand) byte = 1;
    alignas(64) int32_t result[16 * 16];
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, operand, 64);
    _tile_loadd(5, operand, 64);
    _tile_loadd(6, operand, 64);
    _tile_loadd(7, operand, 64);
    for (uint64_t n = 0; n < iterations; ++n) {
        if constexpr (Int8) {
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        } else {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, result, 64);
    _tile_release();
    volatile int32_t sink = result[0];
    (void)sink;
    return iterations * 4 * 16 * 16 * (Int8 ? 64 : 32);
}

}  // namespace

PeakLoop f32_peak_loop() {
    if (__builtin_cpu_supports("avx512f")) return {"AVX512F FMA", "", f32_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"AVX2 FMA", "", f32_avx2};
    return {"", "AVX2 and FMA", nullptr};
}

// Where the CPU has AMX, oneDNN's bf16 and int8 kernels run on its tiles, so the tiles' rate is
// the peak to compare them with.
PeakLoop bf16_peak_loop() {
    if (amx::usable(false)) return {"AMX-BF16 tiles", "", amx_loop<false>};
    if (__builtin_cpu_supports("avx512bf16")) return {"AVX512-BF16", "", bf16_avx512};
    return {"", "AVX512-BF16", nullptr};
}

PeakLoop int8_peak_loop() {
    if (amx::usable(true)) return {"AMX-INT8 tiles", "", amx_loop<true>};
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) return {"AVX512-VNNI", "", int8_avx512};
    return {"", "AVX512-VNNI", nullptr};
}

}  // namespace mclip::kernels
