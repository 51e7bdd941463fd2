#!/usr/bin/env bash
# bench_layers --net: every distinct conv/dense layer of a network after cnnc's passes, with the
# schedule recorded on it, checked against oneDNN on the same input and weights before it is
# timed (a disagreement of 1e-4 or more is an error). The network has a layer for each schedule
# kind and conv form the comparison must handle: a Winograd and a direct 3x3, a strided
# depthwise with Keras' asymmetric padding, a dilated and a grouped conv, a 1x1, a dense.
#   bench_layers_net.sh BENCH_LAYERS CNNC
set -u
BENCH=$1
CNNC=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_bench_layers.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
cat >net.cnn <<'NET'
input x shape=20x20x16
conv2d wino filters=32 kernel=3x3 padding=same activation=relu schedule=winograd:v16,c16,x2,r2
conv2d direct filters=32 kernel=3x3 padding=same schedule=tile:v8,c16,x4,k8,r2
conv2d dw filters=32 groups=32 kernel=3x3 strides=2x2 padding=0,1,0,1 activation=relu6
conv2d dilated filters=16 kernel=3x3 dilation=2x2 padding=same
conv2d grouped filters=32 groups=4 kernel=3x3 padding=same
conv2d pointwise filters=32 kernel=1x1
conv2d pointwise2 filters=32 kernel=1x1
globalavgpool2d gap
dense fc units=10
NET
"$CNNC" compile net.cnn --emit graph >tuned.cnn || { echo "FAIL: cnnc compile"; exit 1; }
"$BENCH" --net=tuned.cnn --benchmark_filter=threads:1 --benchmark_min_time=0.001 >out.txt 2>&1
rc=$?
cat out.txt
[[ $rc -eq 0 ]] || { echo "FAIL: bench_layers exited with $rc"; exit 1; }
! grep -q "disagree" out.txt || { echo "FAIL: cnnc and oneDNN disagree on a layer"; exit 1; }
for layer in wino direct dw dilated grouped pointwise_x2 fc; do
  for side in cnnc onednn; do
    grep -q "^$side/$layer/batch:1/threads:1" out.txt || { echo "FAIL: no $side/$layer run"; exit 1; }
  done
done
echo "bench_layers --net: every layer matched oneDNN"
