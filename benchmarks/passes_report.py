#!/usr/bin/env python3
"""Regenerates docs/passes.md: what each optimisation earns, measured on this machine.

  python3 benchmarks/passes_report.py [--models ResNet50,VGG16] [--batches 1,32]

For LeNet-5, VGG16, ResNet50, MobileNetV2, InceptionV3 and DenseNet121 (the .keras files of
tools/keras_export.py, in --zoo) at batch 1 and 32: kernels and peak activation memory before
and after, latency with each optimisation added in turn (`cnnc bench --json` with the others
switched off by --disable-pass / --no-weight-packing / --no-memory-reuse), the ratio to Keras
from benchmarks/report.py's side-by-side runs (benchmarks/results/), and ResNet50's compile time
cold (empty kernel cache), warm (from the on-disk cache) and without the disk cache (JIT).
Needs only a built cnnc; measurements are kept in benchmarks/results/passes/ and reused unless
--force.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from machine import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
OUT = os.path.join(RESULTS, "passes")
MODELS = ["LeNet5", "VGG16", "ResNet50", "MobileNetV2", "InceptionV3", "DenseNet121"]
GRAPH_PASSES = ["choose_tiles", "fold_batchnorm", "fuse_padding", "fuse_epilogues"]
# Passes that only pay with register tiles: on from the +tiling step.
WITH_TILING = ["subsample_strided_convs"]
# Each step adds one optimisation to the previous step.
STEPS = [
    ("none", "none"),               # only dropout removal and dead-code elimination; plain schedules
    ("choose_tiles", "+tiling"),    # register tiles, chunks, rows per task (weights not packed yet)
    ("fold_batchnorm", "+BN fold"),
    ("fuse_padding", "+pad fuse"),
    ("fuse_epilogues", "+epilogue"),
    ("weight_packing", "+packing"),
    ("memory_reuse", "+mem plan"),
    ("micro_batch", "+micro-batch"),  # batch 32 run 4 images per pass through the network
]


def step_flags(step, batch):
    names = [s for s, _ in STEPS]
    on = names[1:names.index(step) + 1]
    if "choose_tiles" in on:
        on += WITH_TILING
    flags = []
    for p in GRAPH_PASSES + WITH_TILING:
        if p not in on:
            flags += ["--disable-pass", p]
    if "weight_packing" not in on:
        flags.append("--no-weight-packing")
    if "memory_reuse" not in on:
        flags.append("--no-memory-reuse")
    if "micro_batch" not in on:
        flags += ["--micro-batch", str(batch)]  # the whole batch through each layer
    return flags


def slow_step(step, batch):
    """The untiled step at batch 32 runs ~15x slower (a VGG16 run takes minutes): it is run once,
    in one round, after one warm-up run."""
    return step == "none" and batch > 1


def bench_once(a, model, batch, step):
    with tempfile.NamedTemporaryFile(suffix=".json") as j:
        timing = ["--min-time", "0", "--min-runs", "1", "--warmup", "0"] if slow_step(step, batch) else \
            ["--min-time", str(a.min_time), "--min-runs", str(a.min_runs)]
        cmd = [a.cnnc, "bench", os.path.join(a.zoo, model + ".keras"), "--batch", str(batch),
               "--json", j.name] + timing + step_flags(step, batch)
        print("passes_report: " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(j.name) as f:
            return json.load(f)


def bench_steps(a, model, batch):
    """Every step's result: of --rounds passes over all the steps in turn (so drift in the
    machine's speed hits every step alike), each step's run with the lowest median, every
    round's median kept beside it."""
    paths = {step: os.path.join(OUT, f"{model}.b{batch}.{step}.json") for step, _ in STEPS}
    if a.force or not all(os.path.exists(p) for p in paths.values()):
        best, cpu = {}, cpu_name()
        for round_ in range(a.rounds):
            for step, _ in STEPS:
                if step == "micro_batch" and batch == 1:
                    continue  # one image: nothing to split
                if slow_step(step, batch) and round_ > 0:
                    continue
                r = bench_once(a, model, batch, step)
                r["cpu"] = cpu
                medians = best.get(step, {}).get("round_medians_ms", []) + [r["median_ms"]]
                if step not in best or r["median_ms"] < best[step]["median_ms"]:
                    best[step] = r
                best[step]["round_medians_ms"] = medians
        if batch == 1:
            best["micro_batch"] = best["memory_reuse"]
        for step, r in best.items():
            with open(paths[step], "w") as f:
                json.dump(r, f, indent=1)
    result = {}
    for step, p in paths.items():
        with open(p) as f:
            result[step] = json.load(f)
    return result


def compile_times(a):
    out = os.path.join(OUT, "ResNet50.compile.json")
    if not a.force and os.path.exists(out):
        with open(out) as f:
            return json.load(f)
    path = os.path.join(a.zoo, "ResNet50.keras")
    cache = tempfile.mkdtemp(prefix="cnnc_cache_")
    result = {}
    try:
        for name, env_dir in [("cold", cache), ("warm", cache), ("jit", "off")]:
            env = dict(os.environ, CNNC_CACHE_DIR=env_dir)
            with tempfile.NamedTemporaryFile(suffix=".json") as j:
                subprocess.run([a.cnnc, "bench", path, "--min-runs", "1", "--min-time", "0", "--json", j.name],
                               check=True, env=env, stdout=subprocess.DEVNULL)
                result[name] = json.load(open(j.name))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    return result


def mib(b):
    return f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b / 2**10:.0f} KiB"


def ms(v):
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def keras_ratio(model, batch):
    p = os.path.join(RESULTS, f"{model}.b{batch}.json")
    if not os.path.exists(p):
        return "–"
    with open(p) as f:
        r = json.load(f)
    s = r.get("systems", {})
    if "cnnc" not in s or "keras" not in s or "error" in s["keras"]:
        return "–"
    v = s["cnnc"]["median_ms"] / s["keras"]["median_ms"]
    return f"**{v:.2f}**" if v < 1 else f"{v:.2f}"


def render(a, rows, compile_result):
    lines = ["# What each optimisation earns", "",
             "Generated by `python3 benchmarks/passes_report.py` (data in benchmarks/results/passes/); do not edit.",
             "Each latency is the median of `cnnc bench MODEL.keras --batch B` with the optimisations up to that",
             "column on and the later ones off; the steps run in turn, twice (--rounds), and each keeps its",
             "faster run's median (a slow moment of the machine then rarely lands on one step only);",
             "the untiled 'none' step at batch 32 is one timed run (after the first), as it takes minutes.",
             "Kernels and activation memory: before = no optimisation (one buffer per value), after = all.",
             "cnnc/Keras: from the side-by-side run of benchmarks/report.py (benchmarks/RESULTS.md), all",
             "optimisations on; below 1 (bold) cnnc is faster.", ""]
    if rows:
        first = rows[0][2]["micro_batch"]
        lines += [f"Machine: {first.get('cpu', 'not recorded')}; {first['threads']} threads; "
                  f"FMA peak {first['peak_gflops']:.0f} GFLOP/s (measured).", ""]
    lines += ["Latency columns, in ms, each adding one optimisation: none (dropout removal and dead code only;",
              "codegen's plain schedule: vectorised over channels, one pixel at a time, no register tiling),",
              "+tiling (choose_tiles: register tiles, reduction chunks, rows per task from shapes and L1;",
              "with subsample_strided_convs: a strided 1x1 conv as a subsampled copy and a stride-1 conv),",
              "+BN fold (fold_batchnorm: into the conv before, else into an unpadded conv after),",
              "+pad fuse (fuse_padding), +epilogue (fuse_epilogues: residual add and activation computed in",
              "the conv's tiles; an activation in a batchnorm that did not fold), +packing (conv and dense",
              "weights pre-packed per register tile),",
              "+mem plan (activations in one arena with liveness-based reuse), +micro-batch (the batch runs",
              "through the whole network 4 images at a time; at batch 1 the same as +mem plan).",
              "Activations: the arena, which with micro-batches holds one micro-batch's.", ""]
    head = "| model | batch | kernels before → after | activations before → after | " + \
        " | ".join(label for _, label in STEPS) + " | speed-up | cnnc/Keras |"
    lines += [head, "|---|---:|---:|---:|" + "---:|" * len(STEPS) + "---:|---:|"]
    for model, batch, r in rows:
        none, full = r["none"], r["micro_batch"]
        cells = " | ".join(ms(r[s]["median_ms"]) for s, _ in STEPS)
        lines.append(f"| {model} | {batch} | {none['kernels']} → {full['kernels']} | "
                     f"{mib(none['arena_bytes'])} → {mib(full['arena_bytes'])} | {cells} | "
                     f"{none['median_ms'] / full['median_ms']:.2f}x | {keras_ratio(model, batch)} |")
    if compile_result:
        c = compile_result
        lines += ["", "## ResNet50 compile time (batch 1)", "",
                  "| | seconds | kernels compiled | from the disk cache |", "|---|---:|---:|---:|",
                  f"| cold (empty on-disk cache) | {c['cold']['compile_seconds']:.2f} | {c['cold']['compiled']} | "
                  f"{c['cold']['from_disk']} |",
                  f"| warm (on-disk cache filled by the cold run) | {c['warm']['compile_seconds']:.3f} | "
                  f"{c['warm']['compiled']} | {c['warm']['from_disk']} |",
                  f"| JIT, no disk cache (CNNC_CACHE_DIR=off) | {c['jit']['compile_seconds']:.2f} | "
                  f"{c['jit']['compiled']} | 0 |", "",
                  f"{c['cold']['kernels']} kernels after fusion; identical ones (same signature) compile once, "
                  "in memory, in every mode.", ""]
    path = os.path.join(ROOT, "docs", "passes.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("passes_report: wrote " + path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--zoo", default="/work/keras_zoo")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="runs per step; the lowest median counts")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    models = [m for m in a.models.split(",") if m]
    missing = [m for m in models if not os.path.exists(os.path.join(a.zoo, m + ".keras"))]
    if missing:
        sys.exit(f"passes_report: missing {missing} in {a.zoo}: "
                 f"python3 tools/keras_export.py zoo --out {a.zoo} --models {','.join(missing)}")
    rows = []
    for m in models:
        for b in [int(x) for x in a.batches.split(",")]:
            rows.append((m, b, bench_steps(a, m, b)))
    render(a, rows, compile_times(a) if "ResNet50" in models else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
