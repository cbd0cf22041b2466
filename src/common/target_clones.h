// Functions compiled for several instruction sets, the best picked by the dynamic loader (GCC's
// target_clones: an ifunc whose resolver asks the CPU). Plain functions
// - under ThreadSanitizer, which instruments the resolvers: the loader runs them before the
//   sanitizer's runtime is up, and the process crashes before main;
// - with clang (14), which gives the resolvers of internal functions external linkage, so that
//   libmclip.so would export them (tests/install/check_exports.sh).
#pragma once

#if defined(__SANITIZE_THREAD__) || defined(__clang__)
#define MCLIP_TARGET_CLONES(...)
#define MCLIP_HAVE_TARGET_CLONES 0
#else
#define MCLIP_TARGET_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#define MCLIP_HAVE_TARGET_CLONES 1
#endif

// The clones mclip's vector loops are built as: AVX-512, x86-64-v3 (AVX2 with FMA) and the
// baseline. (One string per clone: GCC makes a separate clone of every comma-separated option,
// so "avx2,fma" would give an AVX2 clone without FMA and an FMA clone without AVX2.)
#define MCLIP_SIMD_CLONES MCLIP_TARGET_CLONES("avx512f", "arch=x86-64-v3", "default")
