#!/usr/bin/env bash
# find_package(cnnc) from another project: install the build tree into a scratch prefix, build
# tests/package against it with the same CMake, run it, and compare with `cnnc run`.
#   test.sh CMAKE BUILD_DIR SOURCE_DIR
set -eu
CMAKE=$1 BUILD=$2 SRC=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_package.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$CMAKE" --install "$BUILD" --prefix "$T/prefix" >/dev/null
"$CMAKE" -S "$SRC/tests/package" -B "$T/build" -DCMAKE_PREFIX_PATH="$T/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
"$CMAKE" --build "$T/build" >/dev/null
# A constant input (0.5 everywhere) as .npy: a 128-byte header, then float32 data.
{ printf '\x93NUMPY\x01\x00\x76\x00'; printf '%-117s\n' "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 32, 32, 1), }"
  for ((i = 0; i < 1024; i++)); do printf '\x00\x00\x00\x3f'; done; } >"$T/x.npy"
"$T/build/uses_cnnc" "$SRC/models/lenet5.cnn" "$T/x.npy" >"$T/got.txt"
"$T/prefix/bin/cnnc" run "$SRC/models/lenet5.cnn" --seed 3 --input "$T/x.npy" -o "$T/want.npy" >/dev/null
od -An -v -t f4 -j 128 "$T/want.npy" | tr -s ' ' '\n' | sed '/^$/d' | awk '{printf "%.6f\n", $1}' >"$T/want.txt"
[[ $(wc -l <"$T/got.txt") -eq 10 ]] || { echo "uses_cnnc printed $(wc -l <"$T/got.txt") values, expected 10"; exit 1; }
diff "$T/got.txt" "$T/want.txt" || { echo "find_package(cnnc)'s program and cnnc run differ"; exit 1; }
echo "ok: a project built with find_package(cnnc) gives cnnc run's outputs"
