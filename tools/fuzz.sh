#!/usr/bin/env bash
# Builds the model readers' (.cnn, Keras config, .keras, .h5, ONNX; and the tuning database
# import's) libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each, seeded
# with the example models and the fixtures:
#   tools/fuzz.sh [SECONDS] [TARGET...]   each TARGET (default: all) for SECONDS (default 60)
#   FUZZ_RUNS=N tools/fuzz.sh 0 h5        N executions instead (docs/fuzzing.md: 1M each)
# Targets: native, keras_config, keras_file (.keras), h5_file (.h5), onnx_file, tuning_import.
# A crash leaves its input in build-fuzz/crash-*; the run then fails. HDF5 (.h5, and a .keras
# file's weights) is read in a child process, as cnnc reads it: HDF5 1.10's own faults there are
# printed by the sanitizer but contained (the child dies, the reader reports an error), and the
# harness stops a hung child after 0.05 s; only a crash or hang of the fuzzed process is a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(native keras_config keras_file h5_file onnx_file tuning_import)
# Each target's limits on its inputs.
declare -A LIMITS=([native]="-max_len=4096" [keras_config]="-max_len=65536"
  [keras_file]="-rss_limit_mb=4096" [h5_file]="-rss_limit_mb=4096"
  [onnx_file]="-rss_limit_mb=4096 -max_len=65536" [tuning_import]="-max_len=8192")
for t in "${TARGETS[@]}"; do
  [ -n "${LIMITS[$t]+set}" ] || { echo "fuzz.sh: no target '$t'; accepted: ${!LIMITS[*]}" >&2; exit 2; }
done
CMAKE_BIN=$(python3 -c "import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, 'cmake'))")
CC=clang CXX=clang++ "$CMAKE_BIN" -S . -B build-fuzz -DCNNC_FUZZERS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
"$CMAKE_BIN" --build build-fuzz -j "$(nproc)"
mkdir -p build-fuzz/corpus/native build-fuzz/corpus/keras_config build-fuzz/corpus/keras_file \
  build-fuzz/corpus/h5_file build-fuzz/corpus/onnx_file build-fuzz/corpus/tuning_import
cp models/*.cnn build-fuzz/corpus/native/
cp tests/fixtures/keras/*.json build-fuzz/corpus/keras_config/
cp tests/fixtures/keras/*.keras build-fuzz/corpus/keras_file/
cp tests/fixtures/keras/*.h5 build-fuzz/corpus/h5_file/
cp tests/fixtures/onnx/*.onnx build-fuzz/corpus/onnx_file/
cp tests/fuzz/tuning_records.jsonl build-fuzz/corpus/tuning_import/
cd build-fuzz
# A small quarantine keeps the process small: every HDF5 read forks it.
export ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=4:malloc_context_size=5
# -timeout: an input that takes longer than 10 s is a finding (a hang), not a slow run.
for t in "${TARGETS[@]}"; do
  if [ -n "${FUZZ_RUNS:-}" ]; then budget="-runs=$FUZZ_RUNS"; else budget="-max_total_time=$SECONDS_EACH"; fi
  # shellcheck disable=SC2086
  ./tests/fuzz/fuzz_"$t" $budget -timeout=10 -print_final_stats=1 ${LIMITS[$t]} corpus/"$t"
done
