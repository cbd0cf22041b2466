#!/usr/bin/env bash
# Builds mclip and runs the whole test suite with ctest. The reference fixtures are looked up at
# ../shared/fixtures beside the checkout (or $MCLIP_FIXTURES); without them parity tests skip,
# and under CI (CI=true) they fail.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j"$(nproc)" "$@"
