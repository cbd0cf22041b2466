#!/usr/bin/env bash
# The test suite under the sanitizers:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer: the whole unit-test suite (but the Python
#         package, which would need the runtime preloaded into the interpreter), built with
#         clang 14 in build-asan, the build scripts/fuzz.sh shares (scripts/asan-build.sh), and
#         run with ctest; any report fails the test it occurs in.
#   tsan  ThreadSanitizer: the tests that use threads (the live pipeline tests in tests/video and
#         every test executable with a test named *Thread* or *Concurrent*), built in build-tsan.
#
#   scripts/sanitize.sh [asan|tsan|all] [extra ctest arguments for asan...]    (default all)
#
# Environment: MCLIP_ASAN_BUILD, MCLIP_TSAN_BUILD (build folders), MCLIP_TEST_MODELS (models
# converted from the fixtures: both runs reuse those of the normal build, build/, where it has
# them, rather than converting them again at sanitizer speed), CTEST_PARALLEL_LEVEL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-all}"
shift || true
jobs="$(nproc)"

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

run_asan() {
  local build="${MCLIP_ASAN_BUILD:-$root/build-asan}"
  local started built
  started=$(date +%s)
  # shellcheck source=scripts/asan-build.sh
  . "$root/scripts/asan-build.sh"
  configure_asan_build "$root" "$build"
  cmake --build "$build" -- -j"$jobs" >&2
  built=$(date +%s)
  # halt_on_error turns UBSan's reports (recoverable by default) into failures; leaks are
  # reported by ASan at exit. oneDNN's JIT and OpenMP runtime are not instrumented, and need no
  # suppressions so far.
  # The command-line mutation test runs the instrumented mclip once per mutant: fewer of them.
  # Left out: install_consumers, which builds programs with the default, unsanitized compiler
  # against this sanitized library (they cannot link); the tests that count the threads getting
  # CPU time, which the instrumentation's own work upsets; and accuracy checks whose code paths
  # smaller cases already run here: MobileCLIP2-S3 in emulated int8 (270 s instrumented; the
  # smoothing runs in Int8Smoothing and the per-operator tests) and the three largest towers'
  # parity (ViT-L/14, MobileCLIP2-L-14 and -S4, 35-40 s each; ViT-B and S3 run), and the two
  # largest native int8 accuracy checks (MobileCLIP2-S3 and -B; S0, S1, S2, B and ViT-B/32 run),
  # and the second of two end-to-end runs of the same code: the download and conversion of an
  # open_clip checkpoint (38 s; the S0 one runs) and the Core ML export of MobileCLIP-B's text
  # encoder (33 s; S0's runs, the causal mask is checked by the normal run).
  # The normal run has them all.
  local left_out='install_consumers|ModelThreads.TwoModelsKeepTheirOwnCounts|PublicApiThreads.EachModelComputesWithItsOwnCountOnAnyCaller'
  left_out+='|Models/OpenClipPrecision.StaysWithinTheBoundAndKeepsTop1/mobileclip2_s3_int8_reference'
  left_out+='|Models/OpenClipPrecision.StaysWithinTheBoundAndKeepsTop1/mobileclip2_(s3|b)_int8_onednn'
  left_out+='|Models/OpenClipParity.MatchesOpenClip/(openai_vit_l_14|mobileclip2_l_14|mobileclip2_s4)_onednn'
  left_out+='|DownloadTest.DownloadsAndConvertsAnOpenClipCheckpoint|CoreMLExportText.CausalTextEncoderOfMobileClipB'
  # The models converted from the fixtures are those of the normal build when it has them (as for
  # ThreadSanitizer): converting them again instrumented took 69 s, and the converter runs here
  # anyway (the conversion, calibration, download and Core ML import tests).
  local models="${MCLIP_TEST_MODELS:-$root/build/test-models}" reuse=()
  if [ -f "$models/mobileclip_s0.gguf" ]; then
    reuse=(--fixture-exclude-setup fixture_models)  # not added for the tests that need it,
    left_out+='|make_fixture_models'                 # nor run for itself
  else
    models="$build/test-models"
  fi
  (cd "$build" && MCLIP_TEST_MODELS="$models" MCLIP_CLI_MUTATIONS="${MCLIP_CLI_MUTATIONS:-100}" \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    ctest --output-on-failure -j"${CTEST_PARALLEL_LEVEL:-$jobs}" --timeout 1800 "${reuse[@]}" -E "^($left_out)( |\$)" "$@")
  echo "sanitize: asan: built in $((built - started)) s, tests ran in $(( $(date +%s) - built )) s" >&2
}

# The test executables ThreadSanitizer runs: those of tests/video, and those with a test named
# *Thread* or *Concurrent* (found in the sources, then mapped to their executable through the
# mclip_add_test line of their folder).
tsan_targets() {
  grep -oE 'mclip_add_test\([a-z_0-9]+' "$root/tests/video/CMakeLists.txt" | sed 's/mclip_add_test(//'
  local file dir base
  while read -r file; do
    dir="$(dirname "$file")"
    base="$(basename "$file")"
    # A call may span lines: read the file as one line.
    tr '\n' ' ' <"$dir/CMakeLists.txt" | grep -oE "mclip_add_test\([a-z_0-9]+[^)]*$base" | grep -oE '^mclip_add_test\([a-z_0-9]+' |
      sed 's/mclip_add_test(//'
  done < <(grep -rlE 'TEST(_F|_P)?\( *[A-Za-z0-9_]*(Thread|Concurrent)|TEST(_F|_P)?\( *[A-Za-z0-9_]+, *[A-Za-z0-9_]*(Thread|Concurrent)' \
             "$root/tests" --include='*.cpp')
}

run_tsan() {
  local build="${MCLIP_TSAN_BUILD:-$root/build-tsan}"
  local started built targets=() target executable filter failed=()
  started=$(date +%s)
  mapfile -t targets < <(tsan_targets | sort -u)
  if [ ! -f "$build/build.ninja" ]; then
    # -O1 and line tables, as for AddressSanitizer (scripts/asan-build.sh).
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
      "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" \
      "-DCMAKE_C_FLAGS=-fsanitize=thread -g1" "-DCMAKE_CXX_FLAGS=-fsanitize=thread -g1" \
      "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread" "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread" \
      -DMCLIP_BUILD_BENCH=OFF -DMCLIP_BUILD_PYTHON=OFF >/dev/null
  fi
  cmake --build "$build" --target mclip_cli "${targets[@]}" -- -j"$jobs" >&2
  built=$(date +%s)
  local models="${MCLIP_TEST_MODELS:-$root/build/test-models}"
  if [ ! -d "$models" ]; then
    echo "sanitize: tsan: converting the test models (no $models)" >&2
    (cd "$build" && cmake --build . --target make_fixture_models -- -j"$jobs" >&2 && ./tests/models/make_fixture_models >&2)
    models="$build/test-models"
  fi
  for target in "${targets[@]}"; do
    executable="$(find "$build/tests" -name "$target" -type f -perm -u+x | head -1)"
    # Everything in the video tests; elsewhere the thread tests only, but those that need OpenMP
    # teams of two (counting them: *OwnCount*; splitting a batch between them; the normal run has
    # them).
    filter='*'
    grep -qE "mclip_add_test\($target[ )]" "$root/tests/video/CMakeLists.txt" ||
      filter='*Thread*:*Concurrent*-*OwnCount*:*BatchSplitBetweenThreads*'
    echo "sanitize: tsan: $target --gtest_filter=$filter" >&2
    # libgomp is not instrumented, so ThreadSanitizer cannot see its barriers and reports every
    # parallel region as a race: OMP_NUM_THREADS=1 makes one thread the models' default, so that
    # OpenMP teams have one thread wherever a test does not ask for more (a hard OMP_THREAD_LIMIT
    # would break oneDNN, which partitions work by the count it was created with). The threads
    # under test are mclip's own (capture, pipeline, server batcher, concurrent calls).
    if ! (cd "$build" && MCLIP_TEST_MODELS="$models" OMP_NUM_THREADS=1 \
          TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
          "$executable" --gtest_filter="$filter" --gtest_brief=1); then
      failed+=("$target")
    fi
  done
  echo "sanitize: tsan: built in $((built - started)) s, tests ran in $(( $(date +%s) - built )) s" >&2
  if [ ${#failed[@]} -gt 0 ]; then
    echo "sanitize: tsan: failures in ${failed[*]}" >&2
    return 1
  fi
}

case "$mode" in
  asan) run_asan "$@" ;;
  tsan) run_tsan ;;
  all) run_asan "$@"; run_tsan ;;
  *) echo "usage: scripts/sanitize.sh [asan|tsan|all] [ctest arguments]" >&2; exit 2 ;;
esac
