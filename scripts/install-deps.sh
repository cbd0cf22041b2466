#!/usr/bin/env bash
# Installs every build and test dependency of mclip from Debian's packages.
# Idempotent: when everything is already present it prints nothing and exits 0.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev
  nlohmann-json3-dev libcli11-dev
  zlib1g-dev libssl-dev libzip-dev
  libutf8proc-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev
  libavformat-dev libavcodec-dev libavdevice-dev libavutil-dev libswscale-dev
  libsdl2-dev
  libcurl4-openssl-dev libcpp-httplib-dev
  libprotobuf-dev protobuf-compiler
  ffmpeg nodejs jq
  pybind11-dev python3-dev python3-numpy python3-pil python3-pytest python3-dask python3-distributed
  clang-14 libclang-rt-14-dev llvm-14 libomp-14-dev python3
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The GGUF files mclip writes are checked by an independent reader from npm (tests only).
reader_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/gguf_reader"
if command -v npm >/dev/null 2>&1 && [ ! -d "$reader_dir/node_modules/@huggingface/gguf" ]; then
  echo "install-deps: installing @huggingface/gguf (npm) for the GGUF reader test" >&2
  (cd "$reader_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# `mclip serve` (HTTP + WebSocket on CivetWeb) and its browser test (Debian's chromium driven by
# npm playwright-core).
serve_missing=()
for package in libcivetweb-dev chromium; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    serve_missing+=("$package")
  fi
done
if [ ${#serve_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install-deps: installing ${serve_missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${serve_missing[@]}" >/dev/null
fi
serve_test_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/serve"
if command -v npm >/dev/null 2>&1 && [ ! -d "$serve_test_dir/node_modules/playwright-core" ]; then
  echo "install-deps: installing playwright-core (npm) for the web app test" >&2
  (cd "$serve_test_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
