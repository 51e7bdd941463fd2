#!/usr/bin/env python3
"""Regenerates benchmarks/RESULTS.md and benchmarks/results.png: cnnc side by side with Keras
(tf.function, and XLA) and ONNX Runtime on the 19 Keras Applications, LeNet-5 and the CIFAR-10
CNN, at batch 1 and 32, on this machine; plus cnnc's kernels against oneDNN's per layer.

  python3 benchmarks/report.py                      # everything (hours on 2 cores)
  python3 benchmarks/report.py --models ResNet50,VGG16 --batches 1

Needs TensorFlow, Keras, ONNX Runtime, tf2onnx, matplotlib (tools/setup_keras.sh) and a built
cnnc (./setup.sh). Models missing from --zoo are exported first by tools/keras_export.py
(random weights, nothing downloaded). Each measurement is kept in benchmarks/results/ as JSON
and reused unless --force (or --force-models) asks again, so a long run can be resumed and the
tables re-rendered without measuring.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

from machine import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CSV = os.path.join(ROOT, "tools", "reference", "keras_applications.csv")
RESULTS = os.path.join(HERE, "results")
SMALL = ["LeNet5", "CIFAR10CNN"]  # the lecture's two networks, exported by keras_export.py too
SYSTEMS = [("cnnc", "cnnc"), ("keras", "Keras"), ("keras-xla", "Keras XLA"), ("onnxruntime", "ONNX Runtime")]
COLORS = {"cnnc": "#1f77b4", "keras": "#ff7f0e", "keras-xla": "#ffbb78", "onnxruntime": "#2ca02c"}


def reference_table():
    with open(CSV) as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def result_path(model, batch):
    return os.path.join(RESULTS, f"{model}.b{batch}.json")


def measure(model, batch, a):
    path = os.path.join(a.zoo, model + ".keras")
    if not os.path.exists(path):
        print(f"report: exporting {model} to {a.zoo}", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "keras_export.py"), "zoo", "--out", a.zoo,
                        "--models", model], check=True)
    out = result_path(model, batch)
    cmd = [a.cnnc, "bench", path, "--vs", "keras,onnxruntime", "--batch", str(batch),
           "--min-time", str(a.min_time), "--min-runs", str(a.min_runs), "--json", out]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    print("report: " + " ".join(cmd), flush=True)
    # An empty kernel cache: the compile time shown is a first compile, not a cache hit.
    with tempfile.TemporaryDirectory(prefix="cnnc_cache_") as cache:
        proc = subprocess.run(cmd, env=dict(os.environ, CNNC_CACHE_DIR=cache), stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:  # keep the failure, with its reason, as a result: the table says so
        reason = next((l.strip() for l in reversed(proc.stderr.splitlines()) if l.strip()), "")
        with open(out, "w") as f:
            json.dump({"model": model, "batch": batch,
                       "error": f"cnnc bench --vs exited with {proc.returncode}: {reason[:300]}"}, f)


def bench_layers(a):
    exe = os.path.join(os.path.dirname(a.cnnc), "benchmarks", "bench_layers")
    out = os.path.join(RESULTS, "bench_layers.json")
    if not os.path.exists(exe):
        print(f"report: {exe} not built (needs libdnnl-dev); per-layer table left as it was", file=sys.stderr)
        return
    cmd = [exe, "--benchmark_min_time=0.3", "--benchmark_out_format=json", "--benchmark_out=" + out]
    print("report: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    # The CPU's family and model beside Google Benchmark's own context (Debian's version has no
    # --benchmark_context flag).
    with open(out) as f:
        data = json.load(f)
    data.setdefault("context", {})["cpu"] = cpu_name()
    with open(out, "w") as f:
        json.dump(data, f, indent=1)


def fmt_ms(s):
    return f"{s['median_ms']:.3f}" if s["median_ms"] < 10 else f"{s['median_ms']:.1f}"


def load(model, batch):
    p = result_path(model, batch)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def machines(models, batches):
    """Each CPU the results were measured on, by letter, with the first result from it."""
    found = {}
    for b in batches:
        for m in models:
            r = load(m, b)
            if r and "error" not in r and r["cpu"] not in found:
                found[r["cpu"]] = r
    return {cpu: (chr(ord("A") + i), r) for i, (cpu, r) in enumerate(sorted(found.items()))}


def machine_letter(r, machine_letters):
    """A result's machine, as the tables and the chart name it; None for a failed run."""
    return machine_letters[r["cpu"]][0] if r and "error" not in r else None


def model_rows(models, batch, ref, machine_letters):
    several = len(machine_letters) > 1
    lines = [
        f"| model |{' machine |' if several else ''} GFLOP/step | cnnc ms (p10–p90) | Keras ms | Keras XLA ms | "
        f"ONNX Runtime ms | cnnc/Keras | cnnc/XLA | cnnc/ORT | cnnc GFLOP/s | % peak | compile s | max rel err | "
        f"keras.io CPU ms (other hw, b32) |",
        "|---|" + ("---|" if several else "") + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    missing, why = [], []
    for m in models:
        r = load(m, batch)
        published = ref.get(m, {}).get("keras_cpu_ms", "") or "–"
        if r is None:
            missing.append(m)
            continue
        if "error" in r:
            lines.append(f"| {m} |{' |' if several else ''} | failed: {r['error']} |" + " |" * 11 + f" {published} |")
            continue
        s = r["systems"]
        c = s["cnnc"]

        def ms(name):
            x = s.get(name)
            if x is None:
                return "–"
            return "n/a" if "error" in x else fmt_ms(x)

        def ratio(name):
            x = s.get(name)
            if x is None or "error" in x:
                return "–"
            v = c["median_ms"] / x["median_ms"]
            return f"**{v:.2f}**" if v < 1 else f"{v:.2f}"

        err = max(x["max_rel_err_vs_keras"] for x in s.values() if "error" not in x)
        why += [f"{m}, {label}: {s[name]['error']}" for name, label in SYSTEMS if "error" in s.get(name, {})]
        lines.append(
            f"| {m} |{' ' + machine_letter(r, machine_letters) + ' |' if several else ''} {2e-9 * r['macs']:.3g} | {fmt_ms(c)} ({c['p10_ms']:.3g}–{c['p90_ms']:.3g}) | {ms('keras')} | "
            f"{ms('keras-xla')} | {ms('onnxruntime')} | {ratio('keras')} | {ratio('keras-xla')} | "
            f"{ratio('onnxruntime')} | {c['gflops']:.1f} | {c['pct_peak']:.1f}% | "
            f"{r['cnnc_compile_seconds']:.1f} | {err:.1e} | {published} |")
    if why:
        lines += ["", "n/a, why:", ""] + [f"- {w}" for w in why]
    return lines, missing


def layer_rows():
    p = os.path.join(RESULTS, "bench_layers.json")
    if not os.path.exists(p):
        return ["Not measured: build `bench_layers` (needs libdnnl-dev, which setup.sh installs)."]
    with open(p) as f:
        data = json.load(f)
    pairs = {}  # "shape/batch:N" -> {"cnnc": run, "onednn": run}
    for b in data["benchmarks"]:
        system, _, shape = b["name"].partition("/")
        pairs.setdefault(shape.replace("/real_time", ""), {})[system] = b
    lines = ["| layer shape | batch | threads | cnnc ms | oneDNN ms | cnnc GFLOP/s | cnnc % peak | oneDNN GFLOP/s | "
             "oneDNN % peak | cnnc/oneDNN time |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, p in pairs.items():
        m = re.fullmatch(r"(.+)/batch:(\d+)/threads:(\d+)", key)
        if not m:
            continue
        shape, batch, threads = m.groups()
        c, d = p.get("cnnc"), p.get("onednn")
        if not c or not d:
            continue
        if c.get("error_occurred") or d.get("error_occurred"):
            lines.append(f"| {shape} | {batch} | {threads} | {c.get('error_message') or d.get('error_message')} |" + " |" * 6)
            continue
        ratio = c["real_time"] / d["real_time"]
        lines.append(f"| {shape} | {batch} | {threads} | {c['real_time']:.3f} | {d['real_time']:.3f} | {c['GFLOP/s']:.1f} | "
                     f"{c['%peak']:.1f}% | {d['GFLOP/s']:.1f} | {d['%peak']:.1f}% | "
                     + (f"**{ratio:.2f}**" if ratio < 1 else f"{ratio:.2f}") + " |")
    ctx = data.get("context", {})
    lines += ["", f"Google Benchmark, {ctx.get('date', '')}; {ctx.get('cpu', 'CPU not recorded')}, "
              f"{ctx.get('num_cpus', '')} CPUs; times per call "
              "(real time, ms). Below 1 (bold): cnnc's kernel is faster. % peak above 100: MACs include the",
              "zero-padding taps of 'same' padding, which oneDNN skips at the borders."]
    return lines


def chart(models, batches, ref, png, machine_letters):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(batches), figsize=(7 * len(batches), 0.42 * len(models) + 2), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        seen = set()  # one legend entry per system

        def label(text):
            if text in seen:
                return None
            seen.add(text)
            return text

        for i, m in enumerate(models):
            r = load(m, batch)
            if not r or "error" in r:
                continue
            for k, (name, text) in enumerate(SYSTEMS):
                s = r["systems"].get(name)
                if s and "error" not in s:
                    ax.barh(i + (k - 1.5) * 0.2, s["median_ms"], height=0.2, color=COLORS[name], label=label(text))
            published = ref.get(m, {}).get("keras_cpu_ms")
            if batch == 32 and published:
                ax.plot(float(published), i, "kx", label=label("keras.io table (92-core EPYC, other hardware)"))
        ticks = models
        if len(machine_letters) > 1:  # each row's machine, as in the tables
            letters = [machine_letter(load(m, batch), machine_letters) for m in models]
            ticks = [f"{m} ({x})" if x else m for m, x in zip(models, letters)]
        ax.set_yticks(range(len(models)), ticks)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("ms per inference step (median; log scale)")
        ax.set_title(f"batch {batch}")
        ax.grid(axis="x", alpha=0.3)
        if seen:
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3)
    title = "cnnc vs Keras and ONNX Runtime, each row on one machine, same threads (shorter is faster)"
    if len(machine_letters) > 1:
        title += "\n" + "; ".join(f"{letter}: {cpu}" for cpu, (letter, _) in machine_letters.items())
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def render(models, batches, ref, a):
    found = machines(models, batches)
    lines = ["# cnnc vs Keras and ONNX Runtime", "",
             "Generated by `python3 benchmarks/report.py` (data in benchmarks/results/*.json); do not edit.",
             "Every row is one side-by-side run on one machine",
             "(`cnnc bench MODEL.keras --vs keras,onnxruntime`, see benchmarks/vs_peers.py): the same",
             "`.keras` file (random weights) and input for every system, the same threads, runs alternating",
             "between systems after warm-up. Times are per inference step (one batch). Ratios are",
             "cnnc/peer median times: below 1 (bold) cnnc is faster. % peak is of the FMA peak measured in",
             "the same run. Max rel err: the worst system's max |output − Keras| / max |Keras|.",
             "The keras.io column is Keras' own published CPU timing: other hardware (92-core EPYC, batch 32),",
             "shown for context only.", ""]
    if len(found) > 1:
        lines += ["Rows come from more than one machine (column *machine*): compare ratios across rows, and",
                  "times only between rows of the same machine.", ""]
    for cpu, (letter, r) in found.items():
        v = r["versions"]
        lines += [f"Machine{' ' + letter if len(found) > 1 else ''}: {cpu}, {r['cores']} cores; "
                  f"{r['threads']} threads for every system; FMA peak {r['peak_gflops']:.0f} GFLOP/s, "
                  f"memory {r['memory_gbs']:.0f} GB/s (measured). TensorFlow {v.get('tensorflow')}, "
                  f"Keras {v.get('keras')}, ONNX Runtime {v.get('onnxruntime')}, tf2onnx {v.get('tf2onnx')}.", ""]
    lines += ["![cnnc vs Keras and ONNX Runtime](results.png)", ""]
    for b in batches:
        rows, missing = model_rows(models, b, ref, found)
        lines += [f"## Batch {b}", ""] + rows + [""]
        if missing:
            lines += [f"Not measured yet: {', '.join(missing)} "
                      f"(`python3 benchmarks/report.py --models {','.join(missing)} --batches {b}`).", ""]
    lines += ["## Per layer: cnnc's kernel vs oneDNN's", "",
              "`build/benchmarks/bench_layers` (Google Benchmark; each shape verified against oneDNN before timing;",
              "oneDNN is what TensorFlow runs on CPUs; both with pre-packed weights, batch 1, same threads).", ""]
    lines += layer_rows() + [""]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    chart(models, batches, ref, os.path.join(HERE, "results.png"), found)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--zoo", default="/work/keras_zoo", help="where the exported .keras models are (or go)")
    ap.add_argument("--models", help="comma-separated subset (default: LeNet5, CIFAR10CNN and the 19)")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", type=int, default=0, help="0: one per core")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-runs", type=int, default=10)
    ap.add_argument("--force", action="store_true", help="measure again even where results exist")
    ap.add_argument("--render-only", action="store_true", help="only rewrite RESULTS.md and the chart")
    ap.add_argument("--skip-layers", action="store_true", help="don't run bench_layers")
    a = ap.parse_args()
    ref = reference_table()
    everything = SMALL + list(ref)
    chosen = [m.strip() for m in a.models.split(",")] if a.models else everything
    unknown = [m for m in chosen if m not in everything]
    if unknown:
        sys.exit(f"report: unknown model(s) {unknown}; known: {', '.join(everything)}")
    batches = [int(b) for b in a.batches.split(",")]
    os.makedirs(RESULTS, exist_ok=True)
    if not a.render_only:
        for m in chosen:
            for b in batches:
                if a.force or load(m, b) is None:
                    measure(m, b, a)
        if not a.skip_layers:
            bench_layers(a)
    render(everything, [1, 32], ref, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
