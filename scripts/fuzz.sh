#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang 14, AddressSanitizer and UndefinedBehavior-
# Sanitizer, and runs each one for a bounded time from its seed corpora.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]      (default 30 s, every harness)
#
# Exits non-zero when a harness finds a crash, a sanitizer report, a leak, a timeout (an input
# taking over 10 s) or memory over 2 GiB; the input is saved under
# $MCLIP_ASAN_BUILD/artifacts/<harness>/ and the command to reproduce it is printed. Keep it as a
# regression test: copy it to tests/regressions/<harness>/ (the normal test suite replays it).
# Environment: MCLIP_ASAN_BUILD (build folder, default build-asan, shared with
# scripts/sanitize.sh asan: see scripts/asan-build.sh), MCLIP_FIXTURES (the reference
# fixtures, default ../shared/fixtures: checkpoints and the CLIP vocabulary join the seeds).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-30}"
shift || true
build="${MCLIP_ASAN_BUILD:-$root/build-asan}"
fixtures="${MCLIP_FIXTURES:-$root/../shared/fixtures}"
all_harnesses=(gguf safetensors npy pytorch_checkpoint image tokenizer json vocabulary labels server_request)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all_harnesses[@]}")

started=$(date +%s)
# shellcheck source=scripts/asan-build.sh
. "$root/scripts/asan-build.sh"
configure_asan_build "$root" "$build"
cmake --build "$build" --target $(printf 'fuzz_%s ' "${harnesses[@]}") -- -j"$(nproc)" >&2
built=$(date +%s)
echo "fuzz: built the harnesses in $((built - started)) s" >&2

# Largest input per harness: bigger inputs only slow the search down (images and checkpoints
# need room for real structure, text does not).
max_len() {
  case "$1" in
    image|pytorch_checkpoint|gguf|safetensors) echo 65536 ;;
    *) echo 4096 ;;
  esac
}
# Read-only seed folders beside the repository's own (fuzz/corpus/<harness>).
extra_seeds() {
  case "$1" in
    pytorch_checkpoint|safetensors) [ -d "$fixtures/checkpoints" ] && echo "$fixtures/checkpoints" ;;
    image) [ -d "$fixtures/images" ] && echo "$fixtures/images" ;;
    json) [ -f "$fixtures/tokenizer/cases.jsonl" ] && echo "$build/fuzz-seeds/json" ;;
  esac
  return 0
}
if [ -f "$fixtures/tokenizer/cases.jsonl" ]; then
  # The golden tokenizer cases are JSON lines with a "text" field: requests as they come.
  mkdir -p "$build/fuzz-seeds/json"
  split -l 20 -d "$fixtures/tokenizer/cases.jsonl" "$build/fuzz-seeds/json/cases-"
fi

failed=()
summary=()
for name in "${harnesses[@]}"; do
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  log="$build/fuzz-$name.log"
  seeds=("$root/fuzz/corpus/$name")
  while read -r extra; do [ -n "$extra" ] && seeds+=("$extra"); done < <(extra_seeds "$name")
  set +e
  (cd "$build" && MCLIP_FIXTURES="$fixtures" "$build/fuzz/fuzz_$name" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$name")" \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}") >"$log" 2>&1
  status=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  summary+=("$(printf '%-20s %10s execs %8s execs/s %6s MB peak  %s' "$name" "${execs:-?}" "${rate:-?}" "${rss:-?}" \
                "$([ $status -eq 0 ] && echo ok || echo FAILED)")")
  if [ $status -ne 0 ]; then
    failed+=("$name")
    echo "fuzz: $name FAILED (exit $status); the end of its log ($log):" >&2
    tail -n 60 "$log" >&2
    for input in "$artifacts"/*; do
      [ -f "$input" ] || continue
      echo "fuzz: reproduce with: $build/fuzz/fuzz_$name $input" >&2
      echo "fuzz: keep it as a regression test: cp $input $root/tests/regressions/$name/" >&2
    done
  fi
done

echo "fuzz: ${seconds} s per harness, $(( $(date +%s) - built )) s of fuzzing:" >&2
printf '  %s\n' "${summary[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
