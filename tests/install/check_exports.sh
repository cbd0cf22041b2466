#!/usr/bin/env bash
# check_exports.sh LIBRARY HEADER_DIR
#
# Fails unless every symbol LIBRARY exports is part of the public API declared in HEADER_DIR:
# C functions named mclip_*, and C++ symbols in namespace mclip (with their type information and
# vtables) whose first name inside the namespace (Model in mclip::Model::load) the headers
# declare. Internals (mclip::ClipModel, mclip::kernels::...), oneDNN and std:: template
# instantiations must not leak. Every mclip_ function the C header declares must be exported.
set -euo pipefail
library=$1
headers=$2

# Identifiers the public headers use outside comments.
declared=$(find "$headers" -name '*.h' -exec sed -e 's://.*$::' {} + | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort -u || true)
is_declared() { grep -qxF "$1" <<<"$declared"; }

# Symbols the dynamic loader can bind to, mangled and demangled, one per line each.
mangled=$(nm -D --defined-only "$library" | awk '{print $3}')
demangled=$(c++filt <<<"$mangled")

failures=0
api_symbols=0
while IFS=$'\t' read -r raw name; do
  case "$raw" in
    _init | _fini | _edata | _end | __bss_start) continue ;;  # the ELF toolchain's own
  esac
  if [[ "$raw" != _Z* ]]; then
    if [[ "$raw" =~ ^mclip_[a-z0-9_]+$ ]]; then
      api_symbols=$((api_symbols + 1))
    else
      echo "exported but not part of the public API (C symbol without the mclip_ prefix): $raw"
      failures=$((failures + 1))
    fi
    continue
  fi
  entity=$name
  for prefix in "typeinfo for " "typeinfo name for " "vtable for " "VTT for "; do
    entity=${entity#"$prefix"}
  done
  if [[ "$entity" =~ ^mclip::([A-Za-z_][A-Za-z0-9_]*) ]] && is_declared "${BASH_REMATCH[1]}"; then
    api_symbols=$((api_symbols + 1))
  else
    echo "exported but not declared in $headers: $name"
    failures=$((failures + 1))
  fi
done < <(paste <(echo "$mangled") <(echo "$demangled"))

# The C API is complete: each function its header declares is in the library.
while read -r function; do
  if ! grep -qxF "$function" <<<"$mangled"; then
    echo "declared in $headers but not exported: $function"
    failures=$((failures + 1))
  fi
done < <(find "$headers" -name '*_c.h' -exec sed -e 's://.*$::' {} + | grep -oE '\bmclip_[a-z0-9_]+[[:space:]]*\(' |
         tr -d '( \t' | sort -u)

if [ "$api_symbols" -eq 0 ]; then
  echo "$library exports no API symbol at all"
  failures=$((failures + 1))
fi
echo "$library: $api_symbols API symbols exported, $failures problem(s)"
[ "$failures" -eq 0 ]
