// What the hand-written AVX-512 kernels (kernels/avx512) need from the CPU.
#pragma once

// What the kernels' functions that touch 512-bit registers are compiled for; the rest of the
// library stays baseline x86-64, and these kernels run only where cpu_supported(). (They use the
// zero-masking forms of the intrinsics: GCC's unmasked ones start from an "undefined" register,
// which its -Wmaybe-uninitialized reports.)
#define MCLIP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
// The same with VNNI, for the int8 kernels' functions that multiply, and AVX512DQ, which every
// CPU with VNNI has (vrangeps and vreduceps in their GELU).
#define MCLIP_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
// The same with AVX512-BF16 (vdpbf16ps, vcvtne2ps2bf16), for the bf16 kernels.
#define MCLIP_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace mclip::kernels::avx512 {

// Whether the CPU has AVX512F, AVX512BW and AVX512VL.
inline bool cpu_supported() {
    static const bool supported =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    return supported;
}

// Whether the CPU also has AVX512-VNNI (vpdpbusd) and AVX512DQ, which the int8 kernels use.
inline bool vnni_supported() {
    static const bool supported = cpu_supported() && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    return supported;
}

// Whether the CPU also has AVX512-BF16, which the bf16 kernels use.
inline bool bf16_supported() {
    static const bool supported = cpu_supported() && __builtin_cpu_supports("avx512bf16");
    return supported;
}

}  // namespace mclip::kernels::avx512
