#!/usr/bin/env bash
# run_consumers.sh BUILD_DIR SOURCE_DIR LIBDIR GENERATOR C_COMPILER CXX_COMPILER
#
# Installs BUILD_DIR into a temporary prefix and uses that copy as applications do: a C program
# built with `cc $(pkg-config --cflags --libs mclip)` and a C++ program built by a CMake project
# with find_package(mclip). Each loads the model converted from the fixtures (the fixture_models
# test), embeds the fixture images and prompts, and writes .npy files that must equal, byte for
# byte, what the installed `mclip embed` writes for the same model and inputs.
#
# Exit status 77 (ctest: skipped) when the reference fixtures are absent, except under CI.
set -euo pipefail
build_dir=$1 source_dir=$2 libdir=$3 generator=$4 c_compiler=$5 cxx_compiler=$6

fixtures=${MCLIP_FIXTURES:-$source_dir/../shared/fixtures}
if [ ! -d "$fixtures/tokenizer" ]; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "reference fixtures not found at $fixtures (set MCLIP_FIXTURES); required under CI" >&2
    exit 1
  fi
  echo "skipped: reference fixtures not found at $fixtures (set MCLIP_FIXTURES)"
  exit 77
fi
model=${MCLIP_TEST_MODELS:-$build_dir/test-models}/mobileclip_s0.gguf
if [ ! -f "$model" ]; then
  echo "$model is missing: the fixture_models set-up (make_fixture_models) must run first" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mclip-install-test-XXXXXX")
trap 'status=$?; if [ $status -eq 0 ]; then rm -rf "$work"; else echo "files kept in $work" >&2; fi' EXIT
prefix=$work/prefix
step() { echo "-- $*"; }
check_loads_installed_library() {
  local library
  library=$(ldd "$1" | awk '/libmclip\.so/ {print $3}')
  [ "$library" = "$prefix/$libdir/$soname" ] || { echo "$1 loads libmclip from '$library', not the installed copy" >&2; exit 1; }
}

step "install into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
for file in include/mclip/mclip.h include/mclip/mclip_c.h "$libdir/libmclip.so" "$libdir/cmake/mclip/mclipConfig.cmake" \
            "$libdir/cmake/mclip/mclipConfigVersion.cmake" "$libdir/pkgconfig/mclip.pc" bin/mclip; do
  [ -e "$prefix/$file" ] || { echo "not installed: $file" >&2; exit 1; }
done
soname=$(readelf -d "$prefix/$libdir/libmclip.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] && [ -e "$prefix/$libdir/$soname" ] || { echo "libmclip.so has no SONAME, or no file by it: '$soname'" >&2; exit 1; }
echo "SONAME $soname"

# The fixture images and prompts, as expected.safetensors (the reference run) lists them.
expected=$fixtures/mobileclip_s0/expected.safetensors
header_size=$(od -An -tu8 -N8 "$expected" | tr -d ' ')
metadata=$(head -c $((8 + header_size)) "$expected" | tail -c "$header_size" | jq -c '.__metadata__')
images=()
while IFS= read -r name; do images+=("$fixtures/images/$name"); done < <(jq -r '.images | fromjson | .[]' <<<"$metadata")
jq -r '.prompts | fromjson | .[]' <<<"$metadata" >"$work/texts.txt"
mapfile -t texts <"$work/texts.txt"
[ ${#images[@]} -gt 0 ] && [ ${#texts[@]} -gt 0 ] || { echo "no images or prompts in $expected" >&2; exit 1; }
echo "${#images[@]} images, ${#texts[@]} prompts"

step "mclip embed (installed) for the reference output"
export LD_LIBRARY_PATH=$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
text_arguments=()
for text in "${texts[@]}"; do text_arguments+=(--text "$text"); done
"$prefix/bin/mclip" embed --model "$model" --image "${images[@]}" --out "$work/mclip_images.npy"
"$prefix/bin/mclip" embed --model "$model" "${text_arguments[@]}" --out "$work/mclip_texts.npy"

step "C consumer: pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
"$c_compiler" -std=c11 -Wall -Wextra -Werror -o "$work/c_consumer" "$source_dir/tests/install/c_consumer.c" \
  $(pkg-config --cflags --libs mclip)

step "C++ consumer: find_package(mclip)"
cmake -S "$source_dir/tests/install/cxx_consumer" -B "$work/cxx" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx_compiler" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  >"$work/cxx_configure.log"
found=$(sed -n 's/^mclip_DIR:PATH=//p' "$work/cxx/CMakeCache.txt")
[ "$found" = "$prefix/$libdir/cmake/mclip" ] || { echo "find_package(mclip) found $found, not the installed copy" >&2; exit 1; }
cmake --build "$work/cxx" >"$work/cxx_build.log"

step "c_consumer"
# The C API embeds one image per call: compared with `mclip embed` of each image alone.
check_loads_installed_library "$work/c_consumer"
"$work/c_consumer" "$model" "$work/c_consumer_image_" "$work/c_consumer_texts.npy" "$work/texts.txt" "${images[@]}"
for i in "${!images[@]}"; do
  "$prefix/bin/mclip" embed --model "$model" --image "${images[$i]}" --out "$work/mclip_image_$i.npy"
  cmp "$work/mclip_image_$i.npy" "$work/c_consumer_image_$i.npy"
done
cmp "$work/mclip_texts.npy" "$work/c_consumer_texts.npy"
echo "c_consumer: image and text embeddings equal mclip embed's, byte for byte"

step "cxx_consumer"
check_loads_installed_library "$work/cxx/cxx_consumer"
"$work/cxx/cxx_consumer" "$model" "$work/cxx_consumer_images.npy" "$work/cxx_consumer_texts.npy" "$work/texts.txt" "${images[@]}"
cmp "$work/mclip_images.npy" "$work/cxx_consumer_images.npy"
cmp "$work/mclip_texts.npy" "$work/cxx_consumer_texts.npy"
echo "cxx_consumer: image and text embeddings equal mclip embed's, byte for byte"
