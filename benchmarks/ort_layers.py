#!/usr/bin/env python3
"""cnnc against ONNX Runtime layer by layer, both inside whole runs of the model.

    python3 benchmarks/ort_layers.py MODEL.keras MODEL.onnx [--batch 32] [--threads 2] [--db DB]
        [--no-tuning] [--runs 4] [--rounds 2] [--json OUT.json]

ONNX Runtime's side is its own profiler (SessionOptions.enable_profiling): each node's time in
`--runs` runs after a warm-up, the median per node. cnnc's side is `cnnc bench --profile --json`:
each kernel's median time inside whole runs. The two sides alternate `--rounds` times and each
layer keeps its median over the rounds: on a shared VM a neighbour can slow one side's minute. A cnnc layer meets the ORT nodes whose names hold
its name without a trailing `_conv` (Keras' `conv2_block1_1_conv` fuses with
`conv2_block1_1_bn` and `_relu`, which ORT names `.../conv2_block1_1_relu_1/Relu:0_nchwc`);
ORT's nodes that meet no layer (layout reorders, a padding of its own) are summed apart. The
table is sorted by how much longer cnnc takes, so what loses comes first.
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ort_node_ms(onnx_path, batch, threads, runs):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "cnnc_ort_layers")
    session = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).uniform(-1, 1, [batch] + list(inp.shape[1:])).astype(np.float32)
    for _ in range(runs + 1):  # the first is the warm-up
        session.run(None, {inp.name: x})
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    times = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[e["name"][: -len("_kernel_time")]].append(e["dur"] / 1000)
    return {k: statistics.median(v[1:] or v) for k, v in times.items()}


def cnnc_kernel_ms(a):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [a.cnnc, "bench", a.keras, "--batch", str(a.batch), "--threads", str(a.threads),
               "--profile", "--json", out] + (["--db", a.db] if a.db else []) + (["--no-tuning"] if a.no_tuning else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            report = json.load(f)
    return report, report["profile"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("keras")
    p.add_argument("onnx")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=4, help="ORT runs after the warm-up")
    p.add_argument("--rounds", type=int, default=2, help="times both sides run, alternating")
    p.add_argument("--db", help="cnnc's tuning database (default: cnnc's own)")
    p.add_argument("--no-tuning", action="store_true")
    p.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    p.add_argument("--json", help="also write the matched rows here")
    a = p.parse_args()

    ort_rounds, cnnc_rounds = [], []
    for _ in range(a.rounds):
        ort_rounds.append(ort_node_ms(a.onnx, a.batch, a.threads, a.runs))
        report, kernels = cnnc_kernel_ms(a)
        cnnc_rounds.append({k["layer"]: k["ms_in_model"] for k in kernels})
    ort_ms = {n: statistics.median(r[n] for r in ort_rounds if n in r) for n in ort_rounds[0]}
    for k in kernels:
        k["ms_in_model"] = statistics.median(r[k["layer"]] for r in cnnc_rounds)
    stems = {k["layer"]: re.sub(r"_conv$", "", k["layer"]) for k in kernels}
    # The longest stem a node's name holds wins (block_1_expand, not block_1).
    owner = {}
    for node in ort_ms:
        best = None
        for layer, stem in stems.items():
            if re.search(r"(^|/)" + re.escape(stem) + r"(_|/|$)", node) and (best is None or len(stem) > len(stems[best])):
                best = layer
        owner[node] = best
    rows = []
    for k in kernels:
        nodes = [n for n, o in owner.items() if o == k["layer"]]
        if nodes:
            ort_total = sum(ort_ms[n] for n in nodes)
            rows.append({"layer": k["layer"], "cnnc_ms": k["ms_in_model"], "ort_ms": ort_total,
                         "ratio": k["ms_in_model"] / ort_total, "schedule": k["schedule"]})
    unmatched = {n: t for n, t in ort_ms.items() if owner[n] is None}
    matched_cnnc = sum(r["cnnc_ms"] for r in rows)
    matched_ort = sum(r["ort_ms"] for r in rows)
    print(f"{report['model']}, batch {a.batch}, {a.threads} threads: cnnc's kernels in the model "
          f"against ONNX Runtime's nodes (its profiler; medians)")
    print(f"matched layers: cnnc {matched_cnnc:.1f} ms, ORT {matched_ort:.1f} ms "
          f"({matched_cnnc / matched_ort:.3f}); cnnc's unmatched kernels "
          f"{sum(k['ms_in_model'] for k in kernels) - matched_cnnc:.1f} ms, ORT's unmatched nodes "
          f"{sum(unmatched.values()):.1f} ms")
    print(f"{'layer':28s} {'cnnc ms':>9s} {'ORT ms':>9s} {'ratio':>6s}  schedule")
    for r in sorted(rows, key=lambda r: r["ort_ms"] - r["cnnc_ms"]):
        print(f"{r['layer']:28s} {r['cnnc_ms']:9.2f} {r['ort_ms']:9.2f} {r['ratio']:6.2f}  {r['schedule']}")
    for n, t in sorted(unmatched.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  ORT only: {n} {t:.2f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": report["model"], "batch": a.batch, "threads": a.threads, "rows": rows,
                       "ort_unmatched_ms": unmatched}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
