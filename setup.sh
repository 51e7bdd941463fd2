#!/usr/bin/env bash
# Installs every dependency (Debian packages, PyPI wheels) idempotently, then configures and
# builds cnnc into build/. Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# libjpeg/libpng: the Halide CMake package looks for them (its image I/O components).
APT_PACKAGES=(build-essential ccache doctest-dev libcli11-dev nlohmann-json3-dev libbenchmark-dev libjpeg-dev libpng-dev
              libcairo2-dev  # charts: training and tuning curves as PNG
              libhdf5-dev libzip-dev pkg-config libsqlite3-dev libxgboost-dev
              libonnx-dev libprotobuf-dev   # the ONNX reader: onnx/onnx_pb.h, libonnx_proto
              zlib1g-dev dataset-fashion-mnist  # gzip'd IDX files: cnnc evaluate --data fashion-mnist
              libdnnl-dev   # oneDNN: only benchmarks/bench_layers, to compare with what TensorFlow runs
              pocl-opencl-icd ocl-icd-opencl-dev  # OpenCL on the CPU: the GPU schedules tested without a GPU
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)  # cnnc export --target arm-64-linux, run under emulation
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=${PYTHON:-python3}
# Halide 21's wheel carries libHalide, its headers and CMake package; its CMake package needs CMake >= 3.28.
$PY -m pip install -q --disable-pip-version-check "halide==21.0.0" "cmake>=3.28,<4.2" numpy \
  "pybind11>=2.11" pytest "scikit-build-core>=0.10" 2>&1 \
  | grep -v "Running pip as the 'root' user" || true

HALIDE_DIR=$($PY -c "import halide, os; print(os.path.join(os.path.dirname(halide.__file__), 'lib64', 'cmake', 'Halide'))")
CMAKE_BIN=$($PY -c "import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, 'cmake'))")

"$CMAKE_BIN" -S . -B build -DCMAKE_BUILD_TYPE=Release -DHalide_DIR="$HALIDE_DIR" \
  -DHalideHelpers_DIR="$(dirname "$HALIDE_DIR")/HalideHelpers" \
  -Dpybind11_DIR="$($PY -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
"$CMAKE_BIN" --build build -j "$(nproc)"
# ctest from the same CMake, so the README's test command needs nothing else on PATH.
ln -sf "$(dirname "$CMAKE_BIN")/ctest" build/ctest
