#!/usr/bin/env bash
# Packs what tools/gpu_check.sh needs on the lent GPU machine into .gpu/ (git-ignored): that
# machine has CUDA and Python but none of setup.sh's Debian libraries, and nothing can be
# fetched there. One xz archive of the cnnc command, cuda_peak, and every shared library cnnc
# loads beyond glibc (libHalide among them), found by ldd; it fits the device tool's 64 MiB
# carry limit with the working tree.
#   ./setup.sh && bash tools/gpu_bundle.sh      # then: device run, carry [".gpu"], tools/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/cnnc && -x build/benchmarks/cuda_peak ]] || { echo "build first (./setup.sh; nvcc for cuda_peak)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/lib
cp build/cnnc build/benchmarks/cuda_peak .gpu/stage/bin/
# glibc's own libraries stay the device's; everything else travels (libHalide, HDF5, libzip,
# SQLite, XGBoost, libstdc++ ...).
ldd build/cnnc | awk '/=> \//{print $3}' |
  grep -vE '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux-x86-64)\.so' |
  while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
# Halide's autoscheduler plugins, loaded from beside libHalide (--autoschedule).
halide_lib=$(dirname "$(ldd build/cnnc | awk '/libHalide/{print $3}')")
cp "$halide_lib"/libautoschedule_*.so .gpu/stage/lib/
tar -C .gpu/stage -cf - bin lib | xz -T0 -9 > .gpu/bundle.tar.xz
rm -rf .gpu/stage
ls -la .gpu/bundle.tar.xz
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
