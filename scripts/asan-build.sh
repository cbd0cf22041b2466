# Sourced by scripts/fuzz.sh and scripts/sanitize.sh: the one AddressSanitizer +
# UndefinedBehaviorSanitizer build (clang 14) that the fuzz harnesses and the sanitized unit-test
# suite share, so that the instrumented library is compiled once for both. Its flags add
# -fsanitize=fuzzer-no-link (coverage counters for libFuzzer) to everything; the tests run with
# them too, which costs some speed and changes nothing else.
#
#   configure_asan_build ROOT BUILD    configures BUILD unless it already is
configure_asan_build() {
  local root="$1" build="$2"
  if ! command -v clang++-14 >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux ]; then
    echo "needs clang-14 and libclang-rt-14-dev (scripts/install-deps.sh installs them)" >&2
    return 2
  fi
  [ -f "$build/build.ninja" ] && return 0
  # -O1 and line tables only, as the sanitizers' documentation advises: reports keep their file
  # and line, and the build takes about half the time of -O3 -g.
  local flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -gline-tables-only"
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  # The Python module would need the ASan runtime preloaded into the interpreter: not built.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "${launcher[@]}" \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" \
    -DMCLIP_FUZZ=ON -DMCLIP_BUILD_TESTS=ON -DMCLIP_BUILD_TOOLS=ON -DMCLIP_BUILD_BENCH=OFF \
    -DMCLIP_BUILD_PYTHON=OFF >/dev/null
}
