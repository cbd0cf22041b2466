#!/usr/bin/env bash
# check_dependencies.sh FILE
#
# Fails if FILE (an ELF library or program) lists among the libraries it needs (DT_NEEDED) one that
# mclip opens only when a feature is used (common/shared_library.h): FFmpeg's, SDL2, libcurl.
# Linked, they would be loaded with libmclip by every process, before its first result.
set -euo pipefail
file=$1
needed=$(objdump -p "$file" | awk '$1 == "NEEDED" {print $2}')
if [ -z "$needed" ]; then
  echo "$file: no NEEDED entries (not a dynamically linked ELF file?)"
  exit 1
fi
optional=$(grep -E '^lib(av(codec|device|filter|format|util)|swscale|swresample|SDL2|curl)' <<<"$needed" || true)
if [ -n "$optional" ]; then
  echo "$file needs libraries that mclip opens on first use:" $optional
  exit 1
fi
echo "$file needs none of FFmpeg, SDL2, libcurl ($(wc -l <<<"$needed") libraries)"
