#!/usr/bin/env python3
"""Regenerates docs/onnx_zoo.md: every model of the Keras zoo converted to ONNX by tf2onnx (as a
Keras user exporting for deployment would), imported by cnnc's ONNX reader, and compared with
ONNX Runtime's output and Keras' on the same input.

  python3 tools/keras_export.py zoo --out /work/keras_zoo   # once: the .keras files, inputs, outputs
  python3 tools/onnx_zoo.py --zoo /work/keras_zoo           # this: converts, compares, writes the doc

Needs TensorFlow, tf2onnx and onnxruntime (tools/setup_keras.sh, pip) and the built cnnc; not
run by CI. The conversion runs in its own process per model (tf2onnx can take far more memory
than the model) and is kept beside the model (NAME.onnx) for the next run.
"""
import argparse, collections, json, os, subprocess, sys, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from keras_zoo import cpu_model  # noqa: E402
from vs_peers import onnx_file  # noqa: E402


def ort_output(path, x):
    """ONNX Runtime's first output for input x, on all cores."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def cnnc_compare(cnnc, path, input_npy, expect_npy, tolerance):
    """`cnnc compare`'s JSON result; its last error line raised when it gives none."""
    p = subprocess.run([cnnc, "compare", path, "--input", input_npy, "--expect", expect_npy,
                        "--tolerance", str(tolerance)], capture_output=True, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError((p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:400])
    return json.loads(lines[-1])


def operator_census(rows, over):
    """The doc's closing line: every ONNX operator of the rows' exports, with its count."""
    ops = collections.Counter()
    for r in rows:
        ops.update(r.get("ops", {}))
    return f"ONNX operators in these exports (count over {over}): " + \
        ", ".join(f"{op} {n}" for op, n in sorted(ops.items())) + "."


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="/work/keras_zoo", help="folder written by keras_export.py zoo")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "onnx_zoo.md"))
    ap.add_argument("--models", default="", help="comma-separated subset")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--no-convert", action="store_true",
                    help="use the NAME.onnx files already there; convert none (tf2onnx needs over 20 GB for VGG)")
    a = ap.parse_args()
    import onnx

    names = sorted(f[:-6] for f in os.listdir(a.zoo) if f.endswith(".keras"))
    if a.models:
        names = [n for n in names if n in a.models.split(",")]
    rows = []
    for name in names:
        base = os.path.join(a.zoo, name)
        row = {"model": name}
        try:
            if a.no_convert and not os.path.exists(base + ".onnx"):
                raise RuntimeError("not converted here (tf2onnx was killed for memory converting it)")
            path, row["convert_s"] = (base + ".onnx", 0.0) if a.no_convert else onnx_file(base + ".keras")
            m = onnx.load(path, load_external_data=False)
            row["nodes"] = len(m.graph.node)
            row["ops"] = collections.Counter(n.op_type for n in m.graph.node)
            ort_out = f"/tmp/onnx_zoo_{name}.ort.npy"
            np.save(ort_out, ort_output(path, np.load(base + ".input.npy")))
            for ref, out in (("ort", ort_out), ("keras", base + ".output.npy")):
                t0 = time.perf_counter()
                row[ref] = cnnc_compare(a.cnnc, path, base + ".input.npy", out, a.tolerance)
                row["seconds"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - a model that fails is a row of the table
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        rows.append(row)
        print(name, "error: " + row["error"] if "error" in row else
              f"max rel err vs ORT {row['ort']['max_rel_error']:.2e}, vs Keras {row['keras']['max_rel_error']:.2e}",
              flush=True)

    ok = [r for r in rows if "error" not in r and r["ort"]["pass"] and r["keras"]["pass"]]
    lines = [
        "# The Keras zoo through ONNX",
        "",
        "Each model of the Keras zoo (random weights, docs/keras_zoo.md) exported to ONNX by tf2onnx",
        "(opset 17, NHWC input transposed to NCHW inside the graph), imported by cnnc's ONNX reader",
        "(frontend/onnx), compiled and run on the zoo's input; its output compared with ONNX Runtime's",
        "on the same input and with Keras' own. Regenerate: `python3 tools/onnx_zoo.py --zoo DIR`.",
        "Params are what the ONNX file holds (tf2onnx folds BatchNorm statistics into constants, so they",
        "differ from Keras' count); a compile time near 0 means every kernel came from the disk cache.",
        "",
        f"Machine: {cpu_model()}. {len(ok)} of {len(rows)} models within {a.tolerance:g} of both.",
        "",
        "| model | ONNX nodes | params | cnnc kernels | max rel. error vs ONNX Runtime | vs Keras | compile s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('nodes', '')} | | | {r['error']} | | |")
            continue
        o, k = r["ort"], r["keras"]
        lines.append(f"| {r['model']} | {r['nodes']} | {o['params']:,} | {o['kernels']} | {o['max_rel_error']:.2e} | "
                     f"{k['max_rel_error']:.2e} | {o['compile_seconds']:.1f} |")
    lines += ["", operator_census(rows, "all models")]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", a.out)
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
