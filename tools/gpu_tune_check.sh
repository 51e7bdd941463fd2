#!/usr/bin/env bash
# cnnc tune on a lent GPU, as one call of the device tool: ResNet50 at batch 32 on cuda:sm_90,
# the GPU schedule space searched for $BUDGET, then the whole model tuned against untuned side
# by side (cnnc tune's last line). Prepare here: ./setup.sh && bash tools/gpu_bundle.sh; then
#   device run: command "bash tools/gpu_tune_check.sh", carry [".gpu"], timeout_s 420
# The log, the tuning database and the tuning curve go to $OUT.
# GPU_TARGET=opencl MODEL=resnet_mini BATCH=2 BUDGET=30s checks it on PoCL without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_tune_out}
TARGET=${GPU_TARGET:-cuda:sm_90}
MODEL=${MODEL:-resnet50}
BATCH=${BATCH:-32}
BUDGET=${BUDGET:-180s}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_tune.log") 2>&1
W=$(mktemp -d)
xz -dc .gpu/bundle.tar.xz | tar -C "$W" -xf - || { echo "no .gpu/bundle.tar.xz (tools/gpu_bundle.sh)"; exit 1; }
export LD_LIBRARY_PATH=$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CNNC_CACHE_DIR=$W/cache
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
echo "== cnnc tune $MODEL, batch $BATCH, $TARGET, $BUDGET ($(date +%T))"
"$W/bin/cnnc" tune "models/$MODEL.cnn" --target "$TARGET" --batch "$BATCH" --budget "$BUDGET" \
  --db "$OUT/gpu_tuning.db" --curve "$OUT/gpu_tune_curve.svg"
echo "== done ($(date +%T))"
