#!/bin/sh
# check_install.sh CMAKE BUILD_DIR SCRATCH PYTHON: runs `cmake --install BUILD_DIR --component python`
# into SCRATCH (as DESTDIR) and imports the installed package from there, away from the build
# tree: the module must find the libmclip.so installed beside it.
set -eu
cmake=$1 build=$2 scratch=$3 python=$4
rm -rf "$scratch"
DESTDIR="$scratch" "$cmake" --install "$build" --component python >/dev/null
init=$(find "$scratch" -path '*/mclip/__init__.py')
[ -n "$init" ] || { echo "no mclip/__init__.py installed under $scratch" >&2; exit 1; }
package=$(dirname "$init")
cd /
PYTHONPATH=$(dirname "$package") "$python" - "$package" <<'PY'
import os, sys
import mclip
package = sys.argv[1]
assert os.path.dirname(mclip.__file__) == package, mclip.__file__
# The library the module loaded is the installed copy, not the build tree's.
maps = open("/proc/self/maps").read()
loaded = {line.split()[-1] for line in maps.splitlines() if "libmclip.so" in line}
assert loaded and all(path.startswith(package) for path in loaded), loaded
print("installed mclip", mclip.version(), "imports from", package)
PY
rm -rf "$scratch"
