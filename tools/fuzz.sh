#!/usr/bin/env bash
# Builds the model readers' (.cnn, Keras config, .keras, .h5, ONNX; and the tuning database
# import's) libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs
# each for SECONDS (default 60), seeded with the example models and the Keras fixtures.
# A crash leaves its input in build-fuzz/crash-*; the run then fails. HDF5 (.h5, and a .keras
# file's weights) is read in a child process, as cnnc reads it: HDF5 1.10's own faults there are
# printed by the sanitizer but contained (the child dies, the reader reports an error), and the
# harness stops a hung child after 0.05 s; only a crash or hang of the fuzzed process is a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
CMAKE_BIN=$(python3 -c "import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, 'cmake'))")
CC=clang CXX=clang++ "$CMAKE_BIN" -S . -B build-fuzz -DCNNC_FUZZERS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
"$CMAKE_BIN" --build build-fuzz -j "$(nproc)"
mkdir -p build-fuzz/corpus/native build-fuzz/corpus/config build-fuzz/corpus/keras build-fuzz/corpus/h5 build-fuzz/corpus/tuning build-fuzz/corpus/onnx
cp models/*.cnn build-fuzz/corpus/native/
for f in tests/fixtures/keras/*.json; do [ -e "$f" ] && cp "$f" build-fuzz/corpus/config/; done
cp tests/fixtures/keras/*.keras build-fuzz/corpus/keras/
cp tests/fixtures/keras/*.h5 build-fuzz/corpus/h5/
cp tests/fuzz/tuning_records.jsonl build-fuzz/corpus/tuning/
cp tests/fixtures/onnx/*.onnx build-fuzz/corpus/onnx/
cd build-fuzz
# A small quarantine keeps the process small: every HDF5 read forks it.
export ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=4:malloc_context_size=5
# -timeout: an input that takes longer than 10 s is a finding (a hang), not a slow run.
./tests/fuzz/fuzz_native -max_total_time="$SECONDS_EACH" -timeout=10 -max_len=4096 corpus/native
./tests/fuzz/fuzz_keras_config -max_total_time="$SECONDS_EACH" -timeout=10 -max_len=65536 corpus/config
./tests/fuzz/fuzz_keras_file -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 corpus/keras
./tests/fuzz/fuzz_h5_file -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 corpus/h5
./tests/fuzz/fuzz_onnx_file -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -max_len=65536 corpus/onnx
./tests/fuzz/fuzz_tuning_import -max_total_time="$SECONDS_EACH" -timeout=10 -max_len=8192 corpus/tuning
