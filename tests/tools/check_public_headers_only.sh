#!/usr/bin/env bash
# check_public_headers_only.sh SOURCE_DIR INCLUDE_DIRECTORIES...
#
# The tools are front ends: they go through the public API (include/mclip) like any application.
# Fails when a file in tools/ includes a header from src/, or when src/ is on the include path
# of the mclip command's target (INCLUDE_DIRECTORIES, as CMake evaluates it with everything the
# target links).
set -euo pipefail
source_dir=$(realpath "$1")
shift
tools=$source_dir/tools
failures=0

while IFS= read -r match; do
  file=${match%%:*}
  rest=${match#*:}
  line=${rest%%:*}
  header=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]+)[">].*/\1/' <<<"${rest#*:}")
  # Resolved as the compiler would with tools/, src/ and include/ on the path.
  for base in "$(dirname "$file")" "$source_dir/src" "$source_dir/include"; do
    if [ -e "$base/$header" ]; then
      case "$(realpath "$base/$header")" in
        "$source_dir/src/"*)
          echo "${file#"$source_dir/"}:$line includes $header from src/"
          failures=$((failures + 1))
          ;;
      esac
      break
    fi
  done
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$tools"/*.cpp "$tools"/*.h)

IFS=';' read -r -a directories <<<"$*"
for directory in "${directories[@]}"; do
  [ -n "$directory" ] || continue
  if [ "$(realpath -m "$directory")" = "$source_dir/src" ]; then
    echo "the mclip command's target has $directory on its include path"
    failures=$((failures + 1))
  fi
done
echo "tools/: $failures use(s) of src/"
[ "$failures" -eq 0 ]
