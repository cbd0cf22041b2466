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
  ffmpeg
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
