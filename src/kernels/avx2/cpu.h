// What the hand-written AVX2 kernels (kernels/avx2) need from the CPU.
#pragma once

namespace mclip::kernels::avx2 {

// Whether the CPU has AVX2 and FMA.
inline bool cpu_supported() {
    static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return supported;
}

}  // namespace mclip::kernels::avx2
