#!/usr/bin/env bash
# Builds the engine alone, without the optional parts (no video, downloads or Core ML, no tools,
# tests, benchmarks, examples or Python package), and checks that libmclip.so then links none of
# FFmpeg, SDL2, libcurl and protobuf, exports only the public API, and answers a model name with
# an error saying it cannot download.
# Cheap with ccache; meant for CI beside scripts/test.sh.
#   scripts/check-minimal-build.sh [BUILD_DIR]      (default: build-minimal beside build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-$root/build-minimal}"
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DMCLIP_WITH_VIDEO=OFF -DMCLIP_WITH_DOWNLOADS=OFF -DMCLIP_WITH_COREML=OFF \
  -DMCLIP_BUILD_TOOLS=OFF -DMCLIP_BUILD_TESTS=OFF -DMCLIP_BUILD_BENCH=OFF -DMCLIP_BUILD_EXAMPLES=OFF \
  -DMCLIP_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build_dir" -- -j"$(nproc)" >&2

library="$build_dir/src/libmclip.so"
[ -f "$library" ] || { echo "check-minimal-build: $library was not built" >&2; exit 1; }
optional=$(ldd "$library" | grep -E 'libav|libsw|libSDL|libcurl|libprotobuf' || true)
if [ -n "$optional" ]; then
  echo "check-minimal-build: the engine-only libmclip.so depends on optional libraries:" >&2
  echo "$optional" >&2
  exit 1
fi
bash "$root/tests/install/check_exports.sh" "$library" "$root/include/mclip"

probe_dir=$(mktemp -d "${TMPDIR:-/tmp}/mclip-minimal-XXXXXX")
trap 'rm -rf "$probe_dir"' EXIT
cc -std=c11 -Wall -Wextra -Werror -I"$root/include" -o "$probe_dir/no_downloads" "$root/tests/install/no_downloads.c" \
  -L"$build_dir/src" -lmclip -Wl,-rpath,"$build_dir/src"
MCLIP_CACHE="$probe_dir/cache" "$probe_dir/no_downloads"
echo "check-minimal-build: the engine-only libmclip.so links none of FFmpeg, SDL2, libcurl, protobuf"
