#!/usr/bin/env bash
# The GPU checks of issue 14, as one script for the lent GPU machine (device tool), made to end
# within one 10-minute call. Prepare here: ./setup.sh && bash tools/gpu_bundle.sh; then
#   device run: command "bash tools/gpu_check.sh", carry [".gpu"], timeout_s 600
# It unpacks .gpu/bundle.tar.xz, measures the GPU's peak (cuda_peak), checks ResNet50,
# MobileNetV2 and VGG16 on CUDA against the same machine's CPU, times them at batch 1 and 32
# (per-kernel profile of ResNet50 b32, against the measured peak), and compares with
# Anderson2021's schedules. Everything goes to $OUT/gpu_check.log (and JSON files beside it).
# GPU_TARGET=opencl MODELS=resnet_mini BATCHES="1 2" runs the same steps on PoCL, small, to
# check the script and the bundle without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
TARGET=${GPU_TARGET:-cuda:sm_90}
MODELS=${MODELS:-resnet50 mobilenet_v2 vgg16}
BATCHES=${BATCHES:-1 32}
BIG=${BATCHES##* }  # the profiled batch
FIRST=${MODELS%% *}  # the profiled model
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
exec > >(tee "$LOG") 2>&1
W=$(mktemp -d)
xz -dc .gpu/bundle.tar.xz | tar -C "$W" -xf - || { echo "no .gpu/bundle.tar.xz (tools/gpu_bundle.sh)"; exit 1; }
export LD_LIBRARY_PATH=$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CNNC_CACHE_DIR=$W/cache CNNC_TUNING_DB=$W/none.db
CNNC=$W/bin/cnnc
step() { echo; echo "== $* ($(date +%T))"; }

step machine
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "(no nvidia-smi)"
lscpu | grep -E "Model name|^CPU\(s\)" || true

step "the GPU's limits (cuda_peak)"
PEAK_ARGS=()
if timeout 60 "$W/bin/cuda_peak" --runs 21 | tee "$OUT/peak.txt"; then
  json=$(tail -1 "$OUT/peak.txt")
  peak=$(sed -E 's/.*"fma_peak_gflops": ([0-9.]+).*/\1/' <<<"$json")
  gbs=$(sed -E 's/.*"memory_gbs": ([0-9.]+).*/\1/' <<<"$json")
  PEAK_ARGS=(--device-peak "$peak" --device-bandwidth "$gbs")
fi

step "correctness: $TARGET against this machine's CPU (same seeded weights and input)"
for m in $MODELS; do
  timeout 150 "$CNNC" run "models/$m.cnn" --seed 1 --batch 2 --target "$TARGET" -o "$W/$m.gpu.npy" | head -1
  timeout 150 "$CNNC" run "models/$m.cnn" --seed 1 --batch 2 -o "$W/$m.cpu.npy" | head -1
  python3 - "$W/$m.gpu.npy" "$W/$m.cpu.npy" "$m" <<'PY'
import sys, numpy as np
g, c = np.load(sys.argv[1]), np.load(sys.argv[2])
d = float(np.abs(g - c).max() / max(1.0, np.abs(c).max()))
print(f"{sys.argv[3]}: max |gpu - cpu| / max(1, |cpu|) = {d:.2e}, argmax equal: "
      f"{bool((g.argmax(1) == c.argmax(1)).all())} -> {'PASS' if d <= 1e-4 else 'FAIL'}")
PY
done

step "latency: cnnc on $TARGET, batch $BATCHES"
for m in $MODELS; do
  for b in $BATCHES; do
    timeout 120 "$CNNC" bench "models/$m.cnn" --batch $b --target "$TARGET" "${PEAK_ARGS[@]}" \
      --min-time 1 --json "$OUT/${m}_b$b.json" | grep -E "^[a-z]|latency|throughput|speed"
  done
done

step "$FIRST b$BIG per kernel on $TARGET"
timeout 150 "$CNNC" bench "models/$FIRST.cnn" --batch "$BIG" --target "$TARGET" "${PEAK_ARGS[@]}" \
  --min-time 1 --profile | head -45

step "Anderson2021's schedules on $FIRST (batch $BIG), for comparison"
for b in $BIG; do
  timeout 200 "$CNNC" bench "models/$FIRST.cnn" --batch $b --target "$TARGET" "${PEAK_ARGS[@]}" \
    --autoschedule anderson2021 --min-time 1 --json "$OUT/${FIRST}_anderson_b$b.json" |
    grep -E "latency|speed"
done
step done
