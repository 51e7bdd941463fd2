#!/usr/bin/env python3
"""cnnc side by side with Keras (TensorFlow CPU) and ONNX Runtime on one Keras model file.

Run through `cnnc bench MODEL.keras --vs keras,onnxruntime [--batch 32] [--threads 2]`, or
directly:  benchmarks/vs_peers.py --cnnc build/cnnc --model M.keras --peers keras,onnxruntime

Fairness, as the benchmark issue asks:
- the same model file, the same input array and batch size for every system;
- the same thread count: cnnc's workers = TensorFlow's intra-op threads = ONNX Runtime's
  intra-op threads; inter-op parallelism 1 for both;
- every system at its best: Keras as a compiled tf.function (graph mode, oneDNN on, as TF ships)
  and again with XLA (jit_compile=True) where XLA compiles the model; ONNX Runtime with all
  graph optimisations, on the model converted by tf2onnx; cnnc after its JIT compile;
- warm-up first, then blocks of runs alternating between systems (A B C A B C ...), each block
  about 0.25 s, so drifts in clock speed or background load hit every system alike; a short
  pause between blocks lets spinning worker threads go to sleep before the next system runs;
- cnnc runs in its own process (`cnnc bench --serve`) and times itself with the same clock;
  Keras and ONNX Runtime are timed around the call, including handing back the output array.

Every system's output on the input is compared with Keras' (max |diff| / max |Keras|).
Needs tensorflow-cpu, keras 3, onnxruntime and tf2onnx: tools/setup_keras.sh installs them.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

from machine import cpu_name

BLOCK_SECONDS = 0.25
PAUSE_SECONDS = 0.02
PEERS = ("keras", "onnxruntime")


def percentile(ms, q):
    return float(np.percentile(np.asarray(ms), q))


class Cnnc:
    """`cnnc bench MODEL --serve`: one JSON line per command."""

    name = "cnnc"

    def __init__(self, exe, model, batch, threads, flags=()):
        self.proc = subprocess.Popen([exe, "bench", model, "--serve", "--batch", str(batch),
                                      "--threads", str(threads), *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"cnnc exited (code {self.proc.wait()}) before answering; "
                               "its error is printed above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"cnnc: {reply['error']}")
        return reply

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def set_input(self, path):
        self.ask("input " + path)

    def output(self, tmp):
        path = os.path.join(tmp, "cnnc_output.npy")
        self.ask("output " + path)
        return np.load(path)

    def time_block(self, n):
        return self.ask(f"time {n}")["ms"]

    def close(self):
        try:
            self.ask("quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.wait()


class Timed:
    """A Python-callable system: times each call with the same clock cnnc uses."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def output(self, tmp):
        return self.fn()

    def time_block(self, n):
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.fn()
            ms.append((time.perf_counter() - t0) * 1e3)
        return ms

    def close(self):
        pass


def keras_systems(model, x, threads, xla):
    import tensorflow as tf

    xt = tf.constant(x)
    out = []
    for name, jit in [("keras", False)] + ([("keras-xla", True)] if xla else []):
        f = tf.function(lambda t: model(t, training=False), jit_compile=jit)
        try:
            f(xt).numpy()  # traces, and with XLA compiles; an error here means "does not work"
        except Exception as e:  # noqa: BLE001 - XLA fails in many ways; report, don't stop
            out.append((name, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"))
            continue
        out.append((name, Timed(name, lambda f=f: f(xt).numpy()), None))
    return out


def convert_to_onnx(model_path, onnx_path):
    """--convert-onnx: MODEL.keras to ONNX (any batch), in its own process: tf2onnx can take far
    more memory than the model (VGG16: over 20 GB), and the system may kill it for that."""
    import keras
    import tensorflow as tf
    import tf2onnx

    model = keras.models.load_model(model_path, compile=False)
    spec = [tf.TensorSpec([None] + list(model.input_shape[1:]), tf.float32, name="input")]
    f = tf.function(lambda t: model(t, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(f, input_signature=spec, opset=17)
    tmp = onnx_path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(proto.SerializeToString())
    os.replace(tmp, onnx_path)


def convert_chain_to_onnx(model_path, onnx_path):
    """--convert-onnx-chain: where tf2onnx runs out of memory (VGG16 took over 24 GB), a model
    that is a plain chain of Conv2D, MaxPooling2D, AveragePooling2D, Flatten and Dense layers
    (relu, softmax or linear activations) written as ONNX directly: the NHWC image transposed to
    NCHW once, HWIO kernels to OIHW, and back to NHWC before Flatten, so Dense's weights keep
    Keras' order. Its output is compared with Keras' like every system's."""
    import keras
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = keras.models.load_model(model_path, compile=False)
    nodes, weights = [], []
    cur, nchw = "input", False

    def add(op, inputs, **attrs):
        nonlocal cur
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        cur = out

    def const(name, array):
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def activation(layer):
        a = layer.get_config().get("activation", "linear")
        if a == "relu":
            add("Relu", [cur])
        elif a == "softmax":
            add("Softmax", [cur], axis=-1)
        elif a != "linear":
            raise ValueError(f"{layer.name}: activation {a} is not relu, softmax or linear")

    def auto_pad(layer):
        return "SAME_UPPER" if layer.get_config()["padding"] == "same" else "VALID"

    for layer in model.layers:
        kind, cfg = type(layer).__name__, layer.get_config()
        if kind == "InputLayer":
            continue
        if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D") and not nchw:
            add("Transpose", [cur], perm=[0, 3, 1, 2])
            nchw = True
        if kind == "Conv2D":
            if tuple(cfg["dilation_rate"]) != (1, 1) or cfg.get("groups", 1) != 1:
                raise ValueError(f"{layer.name}: dilated or grouped")
            w = layer.get_weights()
            ins = [cur, const(layer.name + ".W", w[0].transpose(3, 2, 0, 1))]
            if cfg["use_bias"]:
                ins.append(const(layer.name + ".B", w[1]))
            add("Conv", ins, kernel_shape=list(cfg["kernel_size"]), strides=list(cfg["strides"]),
                auto_pad=auto_pad(layer))
            activation(layer)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            add("MaxPool" if kind == "MaxPooling2D" else "AveragePool", [cur],
                kernel_shape=list(cfg["pool_size"]), strides=list(cfg["strides"]), auto_pad=auto_pad(layer))
        elif kind == "Flatten":
            if nchw:
                add("Transpose", [cur], perm=[0, 2, 3, 1])
                nchw = False
            add("Flatten", [cur], axis=1)
        elif kind == "Dense":
            w = layer.get_weights()
            ins = [cur, const(layer.name + ".W", w[0])] + ([const(layer.name + ".B", w[1])] if cfg["use_bias"] else [])
            add("Gemm", ins)
            activation(layer)
        else:
            raise ValueError(f"{layer.name}: {kind} is not in a plain chain of conv, pool, flatten, dense")
    shape_in = ["N"] + list(model.input_shape[1:])
    graph = helper.make_graph(nodes, model.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["N"] + list(model.output_shape[1:]))],
                              weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    tmp = onnx_path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(proto.SerializeToString())
    os.replace(tmp, onnx_path)


def onnx_file(model_path):
    """MODEL.onnx beside the model, converted once (and again when the model is newer)."""
    path = os.path.splitext(model_path)[0] + ".onnx"
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(model_path):
        return path, 0.0
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--convert-onnx", model_path, path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode < 0:  # killed, for memory: a plain chain is written directly
        chain = subprocess.run([sys.executable, os.path.abspath(__file__), "--convert-onnx-chain", model_path, path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if chain.returncode == 0:
            return path, time.perf_counter() - t0
        why = "tf2onnx killed (out of memory?); not a plain chain either: " + \
            (chain.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"could not convert the model to ONNX: {why[:300]}")
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"tf2onnx could not convert the model: {why[:200]}")
    return path, time.perf_counter() - t0


def onnxruntime_system(path, x, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if len(names) != 1:  # e.g. tf2onnx turns a Normalization layer's statistics into inputs
        raise ValueError(f"the converted model wants {len(names)} inputs ({', '.join(names)}), not just the image")
    feed = {names[0]: x}
    sess.run(None, feed)  # a model ONNX Runtime cannot run fails here, not in the timed loop
    return Timed("onnxruntime", lambda: sess.run(None, feed)[0])


def input_range(model_path):
    """NAME.json beside a zoo model (tools/keras_export.py) says what inputs the model expects."""
    meta = os.path.splitext(model_path)[0] + ".json"
    if os.path.exists(meta):
        with open(meta) as f:
            return tuple(json.load(f).get("input_range", (-1.0, 1.0)))
    return (-1.0, 1.0)


def measure(systems, min_time, min_runs, max_time):
    """Warm-up, then alternating blocks until every system has min_runs runs and min_time s."""
    block = {}
    for s in systems:
        ms, t0 = [], time.perf_counter()
        while len(ms) < 2 or (len(ms) < 3 and time.perf_counter() - t0 < 5) or time.perf_counter() - t0 < 0.5:
            ms += s.time_block(1)
        block[s.name] = max(1, int(BLOCK_SECONDS * 1e3 / float(np.median(ms))))
    samples = {s.name: [] for s in systems}
    start = time.perf_counter()
    while True:
        done = all(len(v) >= min_runs and sum(v) >= min_time * 1e3 for v in samples.values())
        if done or (time.perf_counter() - start > max_time and all(len(v) >= 3 for v in samples.values())):
            return samples
        for s in systems:
            samples[s.name] += s.time_block(block[s.name])
            time.sleep(PAUSE_SECONDS)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--convert-onnx":
        convert_to_onnx(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--convert-onnx-chain":
        convert_chain_to_onnx(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cnnc", required=True, help="path of the cnnc binary")
    ap.add_argument("--model", required=True, help="a Keras model file (.keras or .h5)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--peers", default="keras,onnxruntime", help="comma-separated: keras, onnxruntime")
    ap.add_argument("--no-xla", dest="xla", action="store_false", help="skip Keras with XLA")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds measured per system, at least")
    ap.add_argument("--min-runs", type=int, default=10, help="runs per system, at least")
    ap.add_argument("--max-time", type=float, default=300.0, help="stop measuring after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--cnnc-flag", action="append", default=[],
                    help="a flag for cnnc's side (repeatable): --db, --no-tuning, --autoschedule ...")
    a = ap.parse_args()

    peers = [p for p in a.peers.split(",") if p]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        sys.exit(f"vs_peers: unknown peer(s) {bad}; accepted: {', '.join(PEERS)}")
    ext = os.path.splitext(a.model)[1]
    if ext not in (".keras", ".h5", ".onnx"):
        sys.exit(f"vs_peers: {a.model}: the peers need the model as a Keras file (.keras or .h5) "
                 f"or an ONNX file, not '{ext}'; tools/keras_export.py writes the zoo, LeNet-5 "
                 "and the CIFAR-10 CNN as .keras")
    if not os.path.exists(a.model):
        sys.exit(f"vs_peers: {a.model}: no such file")
    is_onnx = ext == ".onnx"  # ONNX Runtime runs it as it is, NCHW; Keras cannot
    if is_onnx and "keras" in peers:
        sys.exit(f"vs_peers: {a.model}: Keras cannot run an ONNX model; accepted peer: onnxruntime")
    if not is_onnx:
        try:
            import tensorflow as tf  # noqa: F401 - checked before the long cnnc compile
            import keras
        except ImportError as e:
            sys.exit(f"vs_peers: {e}; install TensorFlow and Keras with tools/setup_keras.sh")
        # The same thread count for everyone; must be set before TensorFlow runs anything.
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    tmp = tempfile.mkdtemp(prefix="cnnc_vs_")
    lo, hi = input_range(a.model)
    rng = np.random.default_rng(a.seed)
    systems, errors, extra = [], {}, {}
    cnnc = Cnnc(a.cnnc, a.model, a.batch, a.threads, a.cnnc_flag)  # compiles first, alone on the machine
    try:
        systems.append(cnnc)
        onnx, model = None, None
        if is_onnx:
            import onnxruntime as ort

            onnx = a.model
            shape = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"]).get_inputs()[0].shape
            x = rng.uniform(lo, hi, [a.batch] + [int(d) for d in shape[1:]]).astype("float32")
        else:
            if "onnxruntime" in peers:  # before Keras loads the model: the conversion needs the memory
                try:
                    onnx, extra["onnx_convert_seconds"] = onnx_file(a.model)
                except RuntimeError as e:
                    errors["onnxruntime"] = str(e)
            model = keras.models.load_model(a.model, compile=False)
            x = rng.uniform(lo, hi, [a.batch] + list(model.input_shape[1:])).astype("float32")
        in_path = os.path.join(tmp, "input.npy")
        np.save(in_path, x)
        cnnc.set_input(in_path)
        if "keras" in peers:
            for name, system, err in keras_systems(model, x, a.threads, a.xla):
                if system:
                    systems.append(system)
                else:
                    errors[name] = err
        if onnx:
            try:
                systems.append(onnxruntime_system(onnx, x, a.threads))
            except Exception as e:  # noqa: BLE001 - a model ONNX Runtime cannot load is a result
                errors["onnxruntime"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"

        # The reference: Keras' own output, or for an ONNX model ONNX Runtime's.
        if model is not None:
            reference = np.asarray(model(x, training=False))
        else:
            ort_system = [s for s in systems if s.name == "onnxruntime"]
            if not ort_system:
                raise RuntimeError(f"ONNX Runtime cannot run {a.model}: {errors.get('onnxruntime')}")
            reference = np.asarray(ort_system[0].output(tmp))
        scale = max(float(np.max(np.abs(reference))), 1e-30)
        rel_err = {s.name: float(np.max(np.abs(np.asarray(s.output(tmp)).reshape(reference.shape) - reference))) / scale
                   for s in systems}
        samples = measure(systems, a.min_time, a.min_runs, a.max_time)
        peak = cnnc.ask("peak")
    finally:
        cnnc.close()

    flops = 2.0 * cnnc.ready["macs"]
    result = {
        "model": os.path.splitext(os.path.basename(a.model))[0], "path": a.model, "batch": a.batch,
        "threads": a.threads, "macs": cnnc.ready["macs"], "cnnc_kernels": cnnc.ready["kernels"],
        "cnnc_compile_seconds": cnnc.ready["compile_seconds"], "cnnc_distinct_kernels": cnnc.ready.get("compiled"), "peak_gflops": peak["fma_peak_gflops"],
        "memory_gbs": peak["memory_gbs"], "cpu": cpu_name(), "cores": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(("onnxruntime",) if is_onnx else ("tensorflow", "keras", "onnxruntime", "tf2onnx")), "input_range": [lo, hi], "seed": a.seed, **extra, "systems": {},
    }
    for s in systems:
        ms = samples[s.name]
        med = percentile(ms, 50)
        gf = flops / (med * 1e-3) * 1e-9
        result["systems"][s.name] = {
            "median_ms": med, "p10_ms": percentile(ms, 10), "p90_ms": percentile(ms, 90), "runs": len(ms),
            "gflops": gf, "pct_peak": 100 * gf / result["peak_gflops"], "max_rel_err_vs_keras": rel_err[s.name]}
    for name, err in errors.items():
        result["systems"][name] = {"error": err}
    print_table(result)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


def versions(mods):
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in mods:
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def print_table(r):
    print(f"{r['model']} ({r['path']}), batch {r['batch']}, {r['threads']} thread(s), {r['cpu']}")
    print(f"  cnnc compile {r['cnnc_compile_seconds']:.1f} s for {r['cnnc_kernels']} kernels; "
          f"{2e-9 * r['macs']:.3g} GFLOP per step; FMA peak {r['peak_gflops']:.1f} GFLOP/s, "
          f"memory {r['memory_gbs']:.1f} GB/s (measured now)")
    print(f"  {'system':<12} {'median ms':>10} {'p10':>9} {'p90':>9} {'runs':>5} {'GFLOP/s':>8} "
          f"{'%peak':>6} {'cnnc/this':>9} {'rel err vs ' + ('ORT' if r['path'].endswith('.onnx') else 'Keras'):>16}")
    base = r["systems"]["cnnc"]["median_ms"]
    for name, s in r["systems"].items():
        if "error" in s:
            print(f"  {name:<12} not measured: {s['error']}")
            continue
        print(f"  {name:<12} {s['median_ms']:10.3f} {s['p10_ms']:9.3f} {s['p90_ms']:9.3f} {s['runs']:5d} "
              f"{s['gflops']:8.1f} {s['pct_peak']:5.1f}% {base / s['median_ms']:9.3f} "
              f"{s['max_rel_err_vs_keras']:16.2e}")


if __name__ == "__main__":
    sys.exit(main())
