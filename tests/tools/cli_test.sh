#!/usr/bin/env bash
# The cnnc command line, end to end: one case per ctest test (tests/CMakeLists.txt).
#   cli_test.sh CASE CNNC SOURCE_DIR
# Bad input must give exit code 1 and a message on stderr that starts with "cnnc: error:" and
# names the file (and line and layer) and what is wrong; never a signal, exit code 2 ("internal
# error") or Halide's internal error text. Uses only bash and coreutils (no python).
set -u
CASE=$1
CNNC=$2
SRC=$3
M=$SRC/models

T=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

fail() {
  echo "FAIL [$CASE]: $*" >&2
  for f in out.txt err.txt; do [[ -s $f ]] && { echo "--- $f:" >&2; head -c 3000 "$f" >&2; }; done
  exit 1
}

# Runs cnnc, keeping stdout in out.txt, stderr in err.txt and the exit code in $RC.
cnnc() {
  "$CNNC" "$@" >out.txt 2>err.txt
  RC=$?
  return 0
}

expect_ok() {
  cnnc "$@"
  [[ $RC -eq 0 ]] || fail "cnnc $* exited with $RC, expected 0"
}

# Nothing that looks like a crash or an internal error.
no_crash() {
  (( RC < 128 )) || fail "cnnc was killed by signal $((RC - 128))"
  [[ $RC -ne 2 ]] || fail "exit code 2 (internal error)"
  ! grep -qi "internal error" err.txt || fail "internal error text on stderr"
  ! grep -q "Halide" err.txt || fail "Halide's text on stderr"
  ! grep -qi "terminate called\|Segmentation\|Aborted\|core dumped" err.txt || fail "crash text on stderr"
}

# expect_error "SUBSTRING" ... -- ARGS: exit 1, stderr starting with "cnnc: error:" and holding
# every substring.
expect_error() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  cnnc "$@"
  no_crash
  [[ $RC -eq 1 ]] || fail "cnnc $* exited with $RC, expected 1"
  [[ $(head -c 12 err.txt) == "cnnc: error:" ]] || fail "stderr does not start with 'cnnc: error:'"
  [[ $(wc -l <err.txt) -le 3 ]] || fail "a long message; expected one clear line"
  for w in "${want[@]}"; do grep -qF -- "$w" err.txt || fail "stderr lacks '$w'"; done
}

# Bad usage: non-zero, no crash, a message pointing to --help.
expect_usage_error() {
  local want=$1
  shift
  cnnc "$@"
  no_crash
  [[ $RC -ne 0 ]] || fail "cnnc $* succeeded"
  grep -qF -- "$want" err.txt || fail "stderr lacks '$want'"
  grep -qF -- "--help" err.txt || fail "stderr does not point to --help"
}

has() { grep -qF -- "$1" "${2:-out.txt}" || fail "${2:-stdout} lacks '$1'"; }

file_size() { wc -c <"$1" | tr -d ' '; }

# The float32 values of an .npy file written by cnnc (a 128-byte header), one per line.
npy_values() { od -An -v -t f4 -j 128 "$1" | tr -s ' ' '\n' | sed '/^$/d'; }

# Checks that F holds a ROWS x 10 float32 array whose rows are probability distributions.
check_softmax_npy() {
  local f=$1 rows=$2
  [[ $(file_size "$f") -eq $((128 + rows * 40)) ]] || fail "$f is $(file_size "$f") bytes, expected $((128 + rows * 40))"
  [[ $(head -c 6 "$f" | od -An -t x1 | tr -d ' \n') == 934e554d5059 ]] || fail "$f lacks the npy magic"
  head -c 128 "$f" | grep -qF "'descr': '<f4', 'fortran_order': False, 'shape': ($rows, 10), }" ||
    fail "$f: header is not float32 ($rows, 10)"
  npy_values "$f" | awk -v rows="$rows" '
    { v = $1 + 0; if (v < 0 || v > 1) bad = 1; s[int((NR - 1) / 10)] += v; n++ }
    END {
      if (n != rows * 10 || bad) exit 1
      for (r = 0; r < rows; r++) if (s[r] < 0.9999 || s[r] > 1.0001) exit 1
    }' || fail "$f: rows are not softmax outputs: $(npy_values "$f" | tr '\n' ' ')"
}

# An .npy header (format 1.0, 128 bytes) for float32 of the shape given as a Python tuple.
npy_header() {
  printf '\x93NUMPY\x01\x00\x76\x00'
  printf '%-117s\n' "{'descr': '<f4', 'fortran_order': False, 'shape': $1, }"
}

# N float32 values of 0.5 (00 00 00 3f).
halves() { local i; for ((i = 0; i < $1; i++)); do printf '\x00\x00\x00\x3f'; done; }

# N float32 values from {0.25, 0.5, 0.75, -0.5} in a fixed pseudo-random order (an LCG).
mixed() {
  local i x=7 v=('\x00\x00\x80\x3e' '\x00\x00\x00\x3f' '\x00\x00\x40\x3f' '\x00\x00\x00\xbf')
  for ((i = 0; i < $1; i++)); do x=$(((x * 1103515245 + 12345) % 2147483648)); printf "${v[$(((x >> 16) % 4))]}"; done
}

# The largest |a - b| over two .npy files of the same length, and fails above a tolerance.
max_diff() {
  paste <(npy_values "$1") <(npy_values "$2") |
    awk -v tol="$3" '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++}
      END {printf "max |diff| %.3g over %d values\n", m, n; exit !(n > 0 && m <= tol)}'
}

# N bytes of fixed pseudo-random garbage (an LCG, so the file is the same on every run).
garbage() {
  local i o x=12345 out=""
  for ((i = 0; i < $1; i++)); do
    x=$(( (x * 1103515245 + 12345) % 2147483648 ))
    printf -v o '\\%03o' $(( (x >> 16) & 255 ))
    out+=$o
  done
  printf "$out"
}

write_net() {  # write_net FILE LINE...
  local f=$1
  shift
  printf '%s\n' "$@" >"$f"
}

case $CASE in
  # ---- summary --------------------------------------------------------------------------------
  summary_seed_layer)
    expect_ok summary "$M/seed_layer.cnn"
    has "(None, 32, 32, 10)"
    grep -E "^conv \(conv2d\) +\(None, 32, 32, 10\) +760 " out.txt >/dev/null || fail "no conv row with 760 params"
    has "Total params: 760 "
    ;;
  summary_lenet5)
    expect_ok summary "$M/lenet5.cnn"
    has "Total params: 61,706"
    has "(None, 10)"
    ;;
  summary_vgg16)
    expect_ok summary "$M/vgg16.cnn"
    has "Total params: 138,357,544"
    ;;

  # ---- run ------------------------------------------------------------------------------------
  run_output)
    expect_ok run "$M/lenet5.cnn" --seed 3 -o out.npy
    [[ -f out.npy ]] || fail "no out.npy"
    check_softmax_npy out.npy 1
    grep -E "^  \[0\] argmax [0-9] \(" out.txt >/dev/null || fail "no argmax line"
    has "written to out.npy"
    [[ ! -s err.txt ]] || fail "stderr is not empty"
    ;;
  run_deterministic)
    expect_ok run "$M/lenet5.cnn" --seed 3 -o a.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 -o b.npy
    cmp -s a.npy b.npy || fail "two runs with --seed 3 differ"
    # Another seed, other numbers (on the one-layer network, which compiles faster).
    expect_ok run "$M/seed_layer.cnn" --seed 3 -o c.npy
    expect_ok run "$M/seed_layer.cnn" --seed 4 -o d.npy
    ! cmp -s c.npy d.npy || fail "--seed 3 and --seed 4 give the same output"
    ;;
  run_weights_roundtrip)
    # A fixed input (all 0.5), so that only the weights differ between the runs.
    { npy_header "(1, 32, 32, 1)"; halves 1024; } >in.npy
    expect_ok run "$M/lenet5.cnn" --seed 5 --input in.npy --save-weights w.cnnw -o a.npy
    [[ -f w.cnnw && ! -e w.cnnw.tmp ]] || fail "--save-weights left no w.cnnw, or a w.cnnw.tmp"
    # 61,706 float32 weights plus the header.
    (( $(file_size w.cnnw) > 61706 * 4 )) || fail "w.cnnw is too small"
    expect_ok run "$M/lenet5.cnn" --seed 9 --input in.npy --weights w.cnnw -o b.npy
    cmp -s a.npy b.npy || fail "the saved weights give another output"
    expect_ok run "$M/lenet5.cnn" --seed 9 --input in.npy -o c.npy
    ! cmp -s a.npy c.npy || fail "--weights had no effect (seed 9's own weights give the same output)"
    check_softmax_npy b.npy 1
    ;;
  run_batch)
    expect_ok run "$M/lenet5.cnn" --seed 3 --batch 3 -o out.npy
    check_softmax_npy out.npy 3
    has "batch 3"
    has "output 'output.softmax' 3x10:"
    for b in 0 1 2; do grep -E "^  \[$b\] argmax " out.txt >/dev/null || fail "no row $b"; done
    expect_ok run "$M/lenet5.cnn" --seed 3 --batch 3 --micro-batch 1 -o out1.npy
    check_softmax_npy out1.npy 3
    expect_error "micro-batch 2 does not divide the batch 3" "a divisor" -- run "$M/lenet5.cnn" --batch 3 --micro-batch 2
    ;;
  run_wrong_input_shape)
    { npy_header "(1, 28, 28, 1)"; halves 784; } >in.npy
    expect_error "1x28x28x1" "1x32x32x1" "lenet5.cnn" "'image'" -- run "$M/lenet5.cnn" --input in.npy
    [[ ! -e out.npy ]] || fail "an output was written"
    ;;

  # ---- bench ----------------------------------------------------------------------------------
  bench)
    expect_ok bench "$M/layers/conv3x3_56x56x64.cnn" --min-time 0 --min-runs 2 --threads 2
    has "GFLOP/s"
    has "latency:"
    grep -qF "% of the FMA peak" out.txt || grep -qF "no AVX2+FMA" out.txt || fail "no '% of the FMA peak'"
    # --profile with --json: each kernel's times alone and in the model, by layer, in the JSON.
    expect_ok bench "$M/resnet_mini.cnn" --min-time 0 --min-runs 2 --threads 2 --profile --json b.json
    has "in the model (runs timed kernel by kernel"
    python3 - b.json <<'PY' || fail "bench --profile --json: no per-kernel profile"
import json, sys
p = json.load(open(sys.argv[1]))["profile"]
assert p and all(k["ms_alone"] > 0 and k["ms_in_model"] > 0 and k["layer"] and ":" in k["schedule"] for k in p), p
assert any(k["layer"] == "res1_conv2" for k in p), [k["layer"] for k in p]
PY
    ;;

  bench_vs_native)
    expect_error "models/lenet5.cnn" "need the model as a Keras file (.keras or .h5)" -- bench "$M/lenet5.cnn" --vs keras
    ;;
  bench_vs_unknown_peer)
    expect_error "unknown peer 'pytorch'" "accepted: keras, onnxruntime" -- bench "$M/lenet5.cnn" --vs keras,pytorch
    ;;
  compile_dump_graph)
    expect_ok compile "$M/resnet_mini.cnn" --dump-graph graph.dot --print-ir --time-passes
    has "epilogue=add+relu"
    has "pass fold_batchnorm" err.txt
    has "cluster_group" graph.dot
    has 'label="one kernel: res1_conv2"' graph.dot
    has 'label="res1_bn2"' graph.dot
    has "before the passes: 34 layers" graph.dot
    ;;

  compile_schedules)
    # The tiling pass records each conv/dense schedule in the IR; without it, codegen's plain one.
    expect_ok compile "$M/lenet5.cnn" --print-ir --emit schedule
    has "schedule=tile:v"
    has "register tile"
    expect_ok compile "$M/lenet5.cnn" --disable-pass choose_tiles --emit schedule
    has "plain: vectorised over channels"
    write_net bad.cnn "input x shape=8x8x16" "conv2d c filters=32 kernel=3x3 schedule=tile:v8,c16,x4,k5,r2"
    expect_error "bad.cnn:2:" "layer 'c' (conv2d)" "cannot apply its schedule" "k (input channels per chunk) must divide" -- run bad.cnn
    ;;

  compile_emit_stages)
    # Every stage can be looked at alone: the fused kernels, Halide's statement, the assembly.
    expect_ok compile "$M/resnet_mini.cnn" --emit fused
    has "fused: res1_bn2, res1_add, res1_out"
    expect_ok compile "$M/resnet_mini.cnn" --emit halide
    has "# kernel of layer 'stem_conv' (conv2d), schedule=tile:"
    has "produce conv"
    has "parallel"
    expect_ok compile "$M/resnet_mini.cnn" --emit asm --layer inc_pool
    has "# kernel of layer 'inc_pool' (maxpool2d), schedule=pool:"
    has "vmaxps"
    cnnc compile "$M/resnet_mini.cnn" --emit asm --layer no_such_layer
    [[ $RC -eq 1 ]] && grep -q "no layer with a kernel is named 'no_such_layer'" err.txt || fail "unknown --layer"
    ;;

  autoschedulers)
    # --autoschedule: Halide's autoschedulers on every kernel, as a comparison point; same outputs.
    expect_ok run "$M/lenet5.cnn" --seed 3 -o host.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 --autoschedule mullapudi2016 -o mullapudi.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 --autoschedule adams2019 -o adams.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 --autoschedule anderson2021 --target opencl -o anderson.npy
    for other in mullapudi adams anderson; do
      cmp -s <(npy_values $other.npy | awk '{printf "%.5f\n", $1}') <(npy_values host.npy | awk '{printf "%.5f\n", $1}') ||
        fail "$other and host outputs differ"
    done
    expect_ok compile "$M/lenet5.cnn" --autoschedule mullapudi2016 --emit schedule
    has "Halide's Mullapudi2016 autoscheduler (last_level_cache_size"
    expect_error "--autoschedule anderson2021 schedules for a GPU target, and --target host is not one" -- \
      run "$M/lenet5.cnn" --autoschedule anderson2021
    printf 'input x shape=8x8x4\nconv2d c filters=8 kernel=3x3 schedule=adams2019:v4\n' > bad.cnn
    expect_error "adams2019 takes no fields" -- run bad.cnn
    ;;
  export_c)
    # cnnc export: a static library + C header + weights; the example C program built against
    # the exported LeNet-5 (weights in a file) and ResNet-mini (embedded, batch 3 run as
    # micro-batches, its 3x3 convs as Winograd: their kernels exported transformed) gives
    # `cnnc run`'s outputs.
    command -v cc >/dev/null || fail "no C compiler (build-essential)"
    { npy_header "(1, 32, 32, 1)"; mixed 1024; } >x1.npy
    { npy_header "(3, 32, 32, 3)"; mixed 9216; } >x3.npy
    expect_ok export "$M/lenet5.cnn" -o lenet --name lenet5 --seed 3
    has "lenet/liblenet5.a"
    expect_ok export "$M/resnet_mini.cnn" -o rmini --name rmini --seed 4 --batch 3 --embed-weights --winograd
    [[ ! -e rmini/rmini.weights ]] || fail "embedded weights were also written to a file"
    cc -O2 -Wall -Werror -DNET=lenet5 -I lenet "$SRC/examples/deploy/run_model.c" lenet/liblenet5.a -lm -lpthread -ldl -o run_lenet5 ||
      fail "the example does not build against liblenet5.a"
    cc -O2 -Wall -Werror -DNET=rmini -I rmini "$SRC/examples/deploy/run_model.c" rmini/librmini.a -lm -lpthread -ldl -o run_rmini ||
      fail "the example does not build against librmini.a"
    ./run_lenet5 lenet/lenet5.weights x1.npy y1.npy || fail "the exported LeNet-5 failed"
    ./run_rmini - x3.npy y3.npy || fail "the exported ResNet-mini failed"
    expect_ok run "$M/lenet5.cnn" --seed 3 --input x1.npy -o ref1.npy
    expect_ok run "$M/resnet_mini.cnn" --seed 4 --input x3.npy -o ref3.npy --winograd
    max_diff y1.npy ref1.npy 0 || fail "exported LeNet-5 and cnnc run differ"
    max_diff y3.npy ref3.npy 0 || fail "exported ResNet-mini and cnnc run differ"
    ! ./run_rmini lenet/lenet5.weights x3.npy y.npy 2>err.txt || fail "the wrong weights were accepted"
    grep -q "not the weights of rmini" err.txt || fail "the wrong weights' message: $(cat err.txt)"
    expect_error "exporting GPU kernels is not built yet" -- export "$M/lenet5.cnn" -o gpu --target opencl
    ;;
  export_arm)
    # Cross-compiled for aarch64 with Debian's cross toolchain, run under qemu-user: the
    # same outputs as this machine's cnnc run (to 1e-5: other vector sums).
    command -v aarch64-linux-gnu-gcc >/dev/null || fail "no aarch64 cross compiler (gcc-aarch64-linux-gnu)"
    command -v qemu-aarch64-static >/dev/null || fail "no qemu-aarch64-static (qemu-user-static)"
    { npy_header "(2, 32, 32, 3)"; mixed 6144; } >x2.npy
    # NEON, and SVE2 at 128-bit vectors (qemu's "max" CPU with that vector length).
    for case in lenet5:1:arm-64-linux resnet_mini:2:arm-64-linux resnet_mini:2:arm-64-linux-sve2-vector_bits_128; do
      IFS=: read -r name batch target <<<"$case"
      expect_ok export "$M/$name.cnn" -o "arm_$name" --name "$name" --seed 5 --batch "$batch" --target "$target"
      has "for $target"
      aarch64-linux-gnu-gcc -O2 -static -DNET="$name" -I "arm_$name" "$SRC/examples/deploy/run_model.c" \
        "arm_$name/lib$name.a" -lm -lpthread -ldl -o "run_$name" 2>/dev/null || fail "the aarch64 example does not link"
      input=x2.npy
      [[ $name == lenet5 ]] && { npy_header "(1, 32, 32, 1)"; mixed 1024; } >x1.npy && input=x1.npy
      qemu-aarch64-static -cpu max,sve128=on "./run_$name" "arm_$name/$name.weights" "$input" "arm_$name.npy" ||
        fail "the aarch64 $name ($target) failed under qemu"
      expect_ok run "$M/$name.cnn" --seed 5 --input "$input" -o "host_$name.npy"
      max_diff "arm_$name.npy" "host_$name.npy" 1e-5 || fail "aarch64 and host outputs of $name differ"
    done
    ;;
  target_flag)
    # --target: host, another CPU's Halide target string, opencl (PoCL runs it on this CPU),
    # cuda (compiles here; running needs the GPU).
    expect_ok run "$M/lenet5.cnn" --seed 3 --target x86-64-linux-sse41 -o sse.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 -o host.npy
    expect_ok run "$M/lenet5.cnn" --seed 3 --target opencl -o opencl.npy
    for other in sse opencl; do
      cmp -s <(npy_values $other.npy | awk '{printf "%.5f\n", $1}') <(npy_values host.npy | awk '{printf "%.5f\n", $1}') ||
        fail "$other and host outputs differ"
    done
    expect_ok compile "$M/lenet5.cnn" --target x86-64-linux-sse41 --emit schedule
    has "x86-64 sse41, 4 lanes, 16 vector registers"
    expect_ok compile "$M/resnet_mini.cnn" --target cuda:sm_90 --emit schedule
    has "gpu_tile:"
    has "GPU CUDA sm_86 PTX, which the driver compiles for sm_90"
    expect_ok compile "$M/lenet5.cnn" --target cuda --emit ptx --layer c1
    has ".target sm_86"
    expect_error "target cuda:sm_90: cannot run:" -- run "$M/lenet5.cnn" --target cuda:sm_90
    expect_error "--emit ptx is for a CUDA target" -- compile "$M/lenet5.cnn" --emit ptx
    expect_error "target 'cuda:sm_2': expected cuda or cuda:sm_XX" -- run "$M/lenet5.cnn" --target cuda:sm_2
    expect_error "a GPU is named by --target opencl or cuda" -- run "$M/lenet5.cnn" --target x86-64-linux-opencl
    expect_error "unknown target 'z80'; accepted: host" -- compile "$M/lenet5.cnn" --target z80
    ;;

  tune_and_apply)
    # A short tune fills the database; run --explain then uses it; records of other hardware
    # (an imported file) are never applied; export and import round-trip.
    write_net one.cnn "input x shape=12x12x16" "conv2d c filters=32 kernel=3x3 padding=same activation=relu" "maxpool2d p pool=2x2"
    expect_ok tune one.cnn --budget 6s --db t.db --threads 2
    has "model: untuned"
    expect_ok db stats --db t.db
    has "integrity: ok"
    has "<- this machine"
    expect_ok run one.cnn --db t.db --threads 2 --explain --seed 2 -o tuned.npy
    has "# schedule of c: "
    grep -qE "tuned: the database's best for this hardware|confirmed by the database" out.txt ||
      fail "--explain does not say the database's schedule was used"
    expect_ok run one.cnn --no-tuning --seed 2 -o plain.npy
    # The same up to rounding (a tuned Winograd conv rounds differently; the values are ~1).
    max_diff tuned.npy plain.npy 1e-4 >/dev/null || fail "tuned and untuned outputs differ"
    expect_ok db export t.jsonl --db t.db
    grep -q '"schedule":"mullapudi2016"' t.jsonl || fail "the Mullapudi2016 seed was not measured"
    grep -q '"source":"alternative"' t.jsonl || fail "the 3x3 conv's Winograd alternative was not measured"
    sed 's/"fingerprint":"[^"]*"/"fingerprint":"some other machine"/' t.jsonl > other.jsonl
    expect_ok db import other.jsonl --db o.db
    expect_ok run one.cnn --db o.db --threads 2 --explain --seed 2
    has "records from other hardware, not applied: some other machine"
    printf '{"fingerprint": 3}\n' > bad.jsonl
    expect_error "bad.jsonl:1: 'fingerprint' must be a string" -- db import bad.jsonl --db o.db
    head -c 300 t.db > broken.db
    expect_error "broken.db" -- db stats --db broken.db
    expect_error "--budget 'soon': give a duration like 90s, 15m or 1h" -- tune one.cnn --budget soon --db t.db
    ;;

  onnx_import)
    # An ONNX model at the command line: its NCHW input .npy taken as ONNX Runtime took it, the
    # outputs compared with ONNX Runtime's; summary and compile read it like any model.
    F="$SRC/tests/fixtures/onnx"
    expect_ok compare "$F/inception_block.onnx" --input "$F/inception_block.input.npy" --expect "$F/inception_block.output.npy"
    has '"pass":true'
    # --logits compares what goes into a final softmax; this model ends in a concat.
    expect_error "--logits: output" -- compare "$F/inception_block.onnx" --input "$F/inception_block.input.npy" --expect "$F/inception_block.output.npy" --logits
    expect_ok summary "$F/resnet_block.onnx"
    has "resnet_block"
    expect_ok run "$F/conv_bn_gemm.onnx" --input "$F/conv_bn_gemm.input.npy" -o out.npy
    has "output 'softmax_9' 2x10"
    printf 'not a protobuf' > bad.onnx
    expect_error "bad.onnx: not an ONNX model" -- run bad.onnx
    ;;

  evaluate_keras)
    # A net Keras trained on Fashion-MNIST (tools/fashion_fixture.py): cnnc evaluate on Debian's
    # test set agrees with Keras' own evaluate() (stored beside it) on the loss and on every
    # prediction but near-ties.
    F="$SRC/tests/fixtures/fashion"
    expect_ok evaluate "$F/fashion_trained.keras" --data fashion-mnist --threads 2
    python3 - "$F/fashion_trained.eval.json" out.txt <<'PY' || fail "cnnc evaluate disagrees with Keras"
import json, re, sys
want = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
loss = float(re.search(r"loss:\s+([0-9.]+)", text).group(1))
correct = int(re.search(r"accuracy:\s+[0-9.]+ \(([0-9]+) of", text).group(1))
print(f"cnnc: loss {loss}, {correct} correct; Keras: loss {want['loss']:.6f}, {want['correct']} correct")
sys.exit(not (abs(loss - want["loss"]) <= 1e-4 * max(1, want["loss"]) and abs(correct - want["correct"]) <= want["near_ties"]))
PY
    # Bad data and mismatched nets are refused by name.
    expect_error "the network takes images of 32x32x1" "the data" "holds 28x28x1" -- evaluate "$M/lenet5.cnn" --data fashion-mnist
    python3 -c "import numpy as np; np.save('x.npy', np.zeros((3, 28, 28), np.uint8)); np.save('y.npy', np.array([1, 12, 0]))"
    expect_error "label 1 is 12, but the network has 10 classes (0 to 9)" -- evaluate "$F/fashion_trained.keras" --data x.npy,y.npy
    printf 'not idx' > t10k-images-idx3-ubyte; printf 'x' > t10k-labels-idx1-ubyte
    expect_error "t10k-images-idx3-ubyte: not an IDX image file: magic number" -- evaluate "$F/fashion_trained.keras" --data .
    ;;

  tune_gpu)
    # The GPU schedule space tuned through OpenCL (PoCL runs it on this CPU): records keyed by
    # the device the driver finds, applied by run --target opencl; CPU seeds refused for a GPU.
    write_net one.cnn "input x shape=12x12x16" "conv2d c filters=32 kernel=3x3 padding=same activation=relu" "maxpool2d p pool=2x2"
    expect_ok tune one.cnn --target opencl --budget 8s --db g.db --threads 2
    grep -qE "on gpu=.*, [0-9]+ compute units opencl" out.txt || fail "the fingerprint does not name the OpenCL device"
    has "gpu_tile:"
    has "model: untuned"
    expect_ok run one.cnn --target opencl --db g.db --threads 2 --explain --seed 2 -o tuned.npy
    grep -qE "tuned: the database's best for this hardware|confirmed by the database" out.txt ||
      fail "--explain does not say the database's GPU schedule was used"
    expect_ok run one.cnn --no-tuning --seed 2 -o plain.npy
    paste <(npy_values tuned.npy) <(npy_values plain.npy) |
      awk '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {exit !(NR > 0 && m < 1e-4)}' ||
      fail "the tuned GPU kernels and the CPU's outputs differ by 1e-4 or more"
    expect_error "--seeds adams2019: an autoscheduler for CPU schedules; for --target opencl give anderson2021 or none" -- tune one.cnn --target opencl --seeds adams2019 --budget 5s --db g.db
    expect_error "--seeds anderson2021: an autoscheduler for GPU schedules" -- tune one.cnn --seeds anderson2021 --budget 5s --db g.db
    if ! ldconfig -p | grep -q libcuda.so.1; then
      expect_error "--target cuda: tuning measures on the GPU, and its driver finds no device on this machine" -- tune one.cnn --target cuda --budget 5s --db g.db
    fi
    ;;

  train_fashion)
    # A short training run on Debian's Fashion-MNIST: it learns, logs every epoch, draws the
    # curves, and the saved weights give `cnnc evaluate` the test accuracy train reported.
    expect_ok train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --epochs 2 --batch 64 \
      --limit 3200 --validation-split 0.2 --threads 2 --save w.cnnw --log log.csv --curves c.png
    has "test: loss"
    grep -q "epoch 2/2: loss" err.txt || fail "no epoch 2 line on stderr"
    acc=$(sed -n 's/^test: loss [0-9.]*, accuracy \([0-9.]*\).*/\1/p' out.txt)
    [[ ${acc%%.*} == 0 && ${acc#0.} > 6500 ]] || fail "test accuracy $acc after 2 short epochs (expected > 0.65)"
    [[ $(wc -l <log.csv) -eq 3 ]] || fail "log.csv should hold a header and 2 epochs"
    [[ $(head -c 4 c.png | od -An -tx1 | tr -d ' ') == 89504e47 ]] || fail "c.png is not a PNG"
    (( $(file_size c.png) > 10000 )) || fail "c.png is too small to hold two charts"
    expect_ok evaluate "$M/fashion_mnist_cnn.cnn" --weights w.cnnw --data fashion-mnist --threads 2
    has "accuracy:  $acc"
    # With augmentation (a flip, rotation and zoom per image and step): it still learns.
    expect_ok train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --epochs 2 --batch 64 \
      --limit 3200 --threads 2 --augment flip,rotate=0.05,zoom=0.1
    acc=$(sed -n 's/^test: loss [0-9.]*, accuracy \([0-9.]*\).*/\1/p' out.txt)
    [[ ${acc%%.*} == 0 && ${acc#0.} > 6000 ]] || fail "test accuracy $acc after 2 augmented epochs (expected > 0.60)"
    expect_error "--augment" "'blur=1' is not an augmentation" -- \
      train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --augment flip,blur=1
    ;;

  train_keras)
    # A Keras model trains and goes back to Keras' own files: a .keras that loads with the
    # trained weights (in cnnc here; in Keras: tools/keras_writeback_check.py) and a .weights.h5.
    K=$SRC/tests/fixtures/fashion/fashion_trained.keras
    args=(--data fashion-mnist --epochs 1 --batch 64 --limit 1280 --threads 2 --seed 1 --no-progress)
    expect_ok train "$K" "${args[@]}" --save t.keras
    acc=$(sed -n 's/^test: loss [0-9.]*, accuracy \([0-9.]*\).*/\1/p' out.txt)
    expect_ok evaluate t.keras --data fashion-mnist --threads 2
    has "accuracy:  $acc"
    expect_ok evaluate "$K" --data fashion-mnist --threads 2
    ! grep -qF "accuracy:  $acc" out.txt || fail "the untrained model has the trained accuracy"
    expect_ok train "$K" "${args[@]}" --no-test --save t.weights.h5
    [[ $(head -c 4 t.weights.h5 | od -An -tx1 | tr -d ' ') == 89484446 ]] || fail "t.weights.h5 is not HDF5"
    # Refused before any training: a net without a Keras layout, a name Keras would not load,
    # the model's own file.
    expect_error "fashion_mnist_cnn.cnn" "accepted: a .keras model" -- \
      train "$M/fashion_mnist_cnn.cnn" "${args[@]}" --save w.weights.h5
    expect_error "written as NAME.weights.h5" -- train "$K" "${args[@]}" --save w.h5
    cp "$K" own.keras
    expect_error "is the file the model was loaded from" -- train own.keras "${args[@]}" --save own.keras
    cmp -s "$K" own.keras || fail "own.keras changed"
    ;;

  train_cifar)
    # CIFAR-10's binary batches (made here: random pixels, labels 0..9): a net trains on
    # data_batch_*.bin and is tested on test_batch.bin; a bad label is named.
    mkdir cifar
    for f in data_batch_1 data_batch_2 test_batch; do
      for i in $(seq 0 63); do printf "\\x0$((i % 10))"; head -c 3072 /dev/urandom; done >"cifar/$f.bin"
    done
    write_net small.cnn "input x shape=32x32x3" "conv2d c filters=8 kernel=3x3 padding=same activation=relu" \
      "maxpool2d p pool=4x4" "flatten f" "dense out units=10 activation=softmax"
    expect_ok train small.cnn --data cifar --epochs 2 --batch 32 --threads 2 --augment flip \
      --no-progress
    has "test: loss"
    has "(64 images)"
    grep -q "epoch 2/2: loss" err.txt || fail "no epoch 2 line on stderr"
    { printf '\x0c'; head -c 3072 /dev/zero; } >bad.bin
    expect_error "bad.bin" "record 0 has label 12" -- evaluate small.cnn --data bad.bin
    ;;

  train_kill_resume)
    # kill -9 at random moments of a training run with checkpoints, then --resume until it
    # completes: the checkpoint always passes its checks, and the final weights are bit for bit
    # those of a run that was never interrupted (batches, dropout and kernels are deterministic).
    args=(train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --epochs 4 --batch 64 --limit 1280
          --threads 2 --seed 3 --no-test --no-progress)
    expect_ok "${args[@]}" --save straight.cnnw
    for i in 1 2 3; do
      setsid "$CNNC" "${args[@]}" --checkpoint ck $([[ -f ck/checkpoint.cnnck ]] && echo --resume) \
        >/dev/null 2>&1 &
      pid=$!
      sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))"
      kill -9 -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    done
    if [[ -f ck/checkpoint.cnnck ]]; then
      expect_ok "${args[@]}" --checkpoint ck --resume --save resumed.cnnw
      grep -q "resumed from" err.txt || fail "the last run did not resume"
    else
      expect_ok "${args[@]}" --checkpoint ck --save resumed.cnnw
    fi
    cmp -s straight.cnnw resumed.cnnw || fail "the resumed run's weights differ from an uninterrupted run's"
    # A damaged checkpoint is refused, not loaded.
    head -c 1000 ck/checkpoint.cnnck >ck/cut && mv ck/cut ck/checkpoint.cnnck
    expect_error "checkpoint.cnnck" "not a usable checkpoint" -- "${args[@]}" --checkpoint ck --resume
    ;;

  train_opencl)
    # The training program through --target opencl (the backward ops' GPU schedules, run by PoCL
    # on the CPU): the same losses, step for step, as the CPU's.
    args=(train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --epochs 2 --batch 32 --limit 192
          --threads 2 --seed 4 --no-test --no-progress)
    expect_ok "${args[@]}" --log cpu.csv
    expect_ok "${args[@]}" --log gpu.csv --target opencl
    paste -d, cpu.csv gpu.csv | tail -n +2 | while IFS=, read -r -a f; do
      # columns: epoch,loss,accuracy,... (10 per file)
      awk -v a="${f[1]}" -v b="${f[11]}" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * (a > 1 ? a : 1)) }' ||
        { echo "epoch ${f[0]}: loss ${f[1]} on the CPU, ${f[11]} on OpenCL" >&2; exit 1; }
    done || fail "OpenCL training's losses differ from the CPU's"
    ;;

  train_bad_input)
    # Data that does not fit the net, labels outside its classes, a net that cannot train, a
    # missing checkpoint: each refused by name.
    expect_error "the network takes inputs of 32x32x1" "holds images of 28x28x1" -- \
      train "$M/lenet5.cnn" --data fashion-mnist --limit 256
    write_net five.cnn "input x shape=28x28x1" "flatten f" "dense out units=5 activation=softmax"
    expect_error "train-images" "label" "the network has 5 classes" -- train five.cnn --data fashion-mnist
    write_net nosoftmax.cnn "input x shape=28x28x1" "flatten f" "dense out units=10"
    expect_error "nosoftmax.cnn" "layer 'out'" "needs the model to end in a softmax" -- \
      train nosoftmax.cnn --data fashion-mnist
    expect_error "no checkpoint to resume from" -- \
      train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --checkpoint none --resume
    expect_error "unknown optimizer 'rmsprop'" "accepted: sgd, adam, adamw" -- \
      train "$M/fashion_mnist_cnn.cnn" --data fashion-mnist --optimizer rmsprop
    ;;

  tune_kill_resume)
    # kill -9 at random moments of a tune, 20 times: the database opens, passes SQLite's
    # integrity check, holds every record committed before (never fewer), and the next run
    # resumes: no schedule of a workload is measured twice.
    write_net one.cnn "input x shape=10x10x8" "conv2d c filters=16 kernel=3x3 padding=same" "relu r"
    last=0
    for i in $(seq 1 20); do
      # Its own process group, so the kill takes its measuring worker too (as a power cut would).
      setsid "$CNNC" tune one.cnn --budget 60s --db k.db --threads 1 >/dev/null 2>&1 &
      pid=$!
      sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))"
      kill -9 -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      expect_ok db stats --db k.db
      has "integrity: ok"
      n=$(sed -n 's/.*: \([0-9]*\) records.*/\1/p' out.txt)
      (( n >= last )) || fail "records went from $last to $n after a kill"
      last=$n
    done
    (( last > 0 )) || fail "no record was committed in 20 runs"
    expect_ok db export all.jsonl --db k.db
    # (The end-of-workload recheck measures the heuristic and the best again on purpose, and
    # records its verdict.)
    dups=$(grep -v -e '"source":"recheck"' -e '"source":"verified"' all.jsonl | sed 's/.*"schedule":"\([^"]*\)".*"workload":"\([^"]*\)".*/\2 \1/' |
           sort | uniq -d | wc -l)
    [[ $dups -eq 0 ]] || fail "$dups schedules were measured twice for one workload (no resume)"
    ;;

  kernel_cache)
    # A second process loads every kernel the first compiled; outputs equal the JIT's.
    export CNNC_CACHE_DIR=$T/cache
    expect_ok compile "$M/lenet5.cnn" --emit schedule
    has "# 8 kernels: 8 compiled, 0 from the disk cache"
    [[ -n $(ls "$T/cache/kernels/"*.so) ]] || fail "no kernel libraries in $T/cache/kernels"
    expect_ok compile "$M/lenet5.cnn" --emit schedule
    has "# 8 kernels: 0 compiled, 8 from the disk cache"
    expect_ok run "$M/lenet5.cnn" --seed 3 -o cached.npy
    CNNC_CACHE_DIR=off expect_ok run "$M/lenet5.cnn" --seed 3 -o jit.npy
    cmp -s cached.npy jit.npy || fail "the cached kernels and the JIT ones give different outputs"
    # Corrupt libraries (a full disk, a crash while copying) are built again, not trusted.
    for f in "$T/cache/kernels/"*.so; do echo garbage >"$f"; done
    expect_ok run "$M/lenet5.cnn" --seed 3 -o rebuilt.npy
    cmp -s rebuilt.npy jit.npy || fail "the rebuilt kernels give other outputs"
    expect_ok compile "$M/lenet5.cnn" --emit schedule
    has "# 8 kernels: 0 compiled, 8 from the disk cache"
    ;;

  # ---- bad network files ----------------------------------------------------------------------
  bad_missing_file)
    expect_error "nope.cnn" "no such file" -- summary nope.cnn
    expect_error "nope.cnn" "no such file" -- run nope.cnn
    ;;
  bad_directory)
    mkdir d.cnn
    expect_error "d.cnn" "is a directory" -- summary d.cnn
    expect_error "$T" "is a directory" -- run "$T"
    ;;
  bad_extension)
    cp "$M/lenet5.cnn" net.onnx
    expect_error "net.onnx: not an ONNX model" -- summary net.onnx
    cp "$M/lenet5.cnn" net.txt
    expect_error "net.txt" "unknown format '.txt'" "accepted: .cnn" -- run net.txt
    ;;
  bad_layer_type)
    write_net bad.cnn "input x shape=8x8x3" "conv3d c filters=3 kernel=3"
    expect_error "bad.cnn:2:" "unknown layer type 'conv3d'" "accepted are:" "conv2d" -- summary bad.cnn
    ;;
  bad_attribute)
    write_net bad.cnn "input x shape=8x8x3" "conv2d c filters=3 kernel=3 colour=red"
    expect_error "bad.cnn:2:" "layer 'c' (conv2d)" "unknown attribute 'colour'" "accepted:" "filters" -- summary bad.cnn
    ;;
  bad_conv_shape)
    write_net bad.cnn "input x shape=8x8x3" "conv2d ok filters=4 kernel=3" "conv2d big filters=3 kernel=9"
    expect_error "bad.cnn:3:" "layer 'big' (conv2d)" "larger than" -- summary bad.cnn
    expect_error "bad.cnn:3:" "layer 'big' (conv2d)" -- run bad.cnn
    ;;
  bad_duplicate_name)
    write_net bad.cnn "input x shape=8x8x3" "conv2d c filters=3 kernel=3" "relu r" "conv2d c filters=3 kernel=3"
    expect_error "bad.cnn:4:" "layer 'c'" "already used" -- summary bad.cnn
    ;;
  bad_unknown_input)
    write_net bad.cnn "input x shape=8x8x3" "conv2d a filters=3 kernel=3" "add s <- a, b"
    expect_error "bad.cnn:3:" "layer 's' (add)" "unknown input 'b'" -- summary bad.cnn
    ;;
  bad_binary_garbage)
    garbage 2000 >garbage.cnn
    [[ $(file_size garbage.cnn) -eq 2000 ]] || fail "the garbage generator wrote $(file_size garbage.cnn) bytes"
    expect_error "garbage.cnn:" -- summary garbage.cnn
    expect_error "garbage.cnn:" -- run garbage.cnn
    # Garbage with a good first line, and a NUL in the middle of a line.
    { echo "input x shape=4x4x1"; printf 'relu r\0x\n'; } >nul.cnn
    expect_error "nul.cnn:2:" "control character" -- summary nul.cnn
    ;;
  bad_empty_file)
    : >empty.cnn
    expect_error "empty.cnn" "no layers" -- summary empty.cnn
    printf '# only a comment\n\n   \n' >comment.cnn
    expect_error "comment.cnn" "no layers" -- run comment.cnn
    ;;

  # ---- bad weights and input files ------------------------------------------------------------
  bad_weights_other_network)
    expect_ok run "$M/seed_layer.cnn" --save-weights seed.cnnw
    expect_error "seed.cnnw" "layer 'c1'" "missing" "network 'seed_layer'" -- run "$M/lenet5.cnn" --weights seed.cnnw
    # Same layer names, other shapes: seed_layer's conv with 12 filters instead of 10.
    sed 's/filters=10/filters=12/' "$M/seed_layer.cnn" >wide.cnn
    expect_error "seed.cnnw" "layer 'conv'" "5x5x3x10" "5x5x3x12" -- run wide.cnn --weights seed.cnnw
    ;;
  bad_weights_corrupt)
    expect_ok run "$M/seed_layer.cnn" --save-weights w.cnnw
    size=$(file_size w.cnnw)
    for cut in 0 5 16 40 $((size / 2)) $((size - 1)); do
      head -c "$cut" w.cnnw >cut.cnnw
      expect_error "cut.cnnw" -- run "$M/seed_layer.cnn" --weights cut.cnnw
    done
    head -c "$((size / 2))" w.cnnw >cut.cnnw
    expect_error "cut.cnnw" "truncated" -- run "$M/seed_layer.cnn" --weights cut.cnnw
    garbage 3000 >garbage.cnnw
    expect_error "garbage.cnnw" "not a cnnc weights file" -- run "$M/seed_layer.cnn" --weights garbage.cnnw
    # A damaged JSON header: the right magic and length, braces replaced.
    { head -c 16 w.cnnw; tail -c +17 w.cnnw | tr '{}' '[]'; } >json.cnnw
    expect_error "json.cnnw" -- run "$M/seed_layer.cnn" --weights json.cnnw
    ;;
  bad_weights_missing)
    expect_error "nope.cnnw" "cannot open" -- run "$M/seed_layer.cnn" --weights nope.cnnw
    ;;
  bad_npy_not_npy)
    expect_error "lenet5.cnn" "not a .npy file" -- run "$M/lenet5.cnn" --input "$M/lenet5.cnn"
    expect_error "nope.npy" -- run "$M/lenet5.cnn" --input nope.npy
    { printf '\x93NUMPY\x01\x00\x76\x00'; printf '%-117s\n' "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 32, 32, 1), }"; halves 1024; } >complex.npy
    expect_error "complex.npy" "<c8" "float32 (<f4)" -- run "$M/lenet5.cnn" --input complex.npy
    { npy_header "(1, 32, 32, 1)"; halves 10; } >short.npy
    expect_error "short.npy" "truncated" -- run "$M/lenet5.cnn" --input short.npy
    { npy_header "(99999999999, 99999999999)"; halves 10; } >absurd.npy
    expect_error "absurd.npy" "too large" -- run "$M/lenet5.cnn" --input absurd.npy
    ;;

  # ---- bad usage ------------------------------------------------------------------------------
  usage_unknown_subcommand)
    expect_usage_error "unknown command 'frobnicate'; accepted: summary, run, bench" frobnicate "$M/lenet5.cnn"
    expect_usage_error "--frobnicate" run "$M/lenet5.cnn" --frobnicate
    expect_usage_error "subcommand" # no arguments at all
    ;;
  usage_batch_zero)
    expect_usage_error "--batch" run "$M/lenet5.cnn" --batch 0
    expect_usage_error "--batch" run "$M/lenet5.cnn" --batch -3
    expect_usage_error "--batch" run "$M/lenet5.cnn" --batch lots
    expect_usage_error "--batch" bench "$M/lenet5.cnn" --batch 0
    ;;
  usage_missing_net)
    expect_usage_error "NET" run
    expect_usage_error "NET" summary
    expect_usage_error "NET" bench --min-runs 2
    ;;
  *)
    echo "cli_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "ok [$CASE]"
