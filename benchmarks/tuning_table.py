#!/usr/bin/env python3
"""Regenerates docs/tuning.md's must-show table for this machine: each model untuned, scheduled by
Halide's Adams2019 autoscheduler alone, and after a tune, side by side with Keras and ONNX Runtime
(`cnnc bench --vs`), and what the tune gained.

  python3 benchmarks/tuning_table.py                       # 5 models x (bench, 15-minute tune, bench)
  python3 benchmarks/tuning_table.py --models ResNet50:1 --budget 5m
  python3 benchmarks/tuning_table.py --render-only         # the table again from the kept results

Needs tools/setup_keras.sh's packages and the models of tools/keras_export.py zoo (--zoo). Every
measurement is kept in benchmarks/results/tuning/CPU/ (JSON from `cnnc bench --json`, the tune's
log and database) and reused unless --force, so a run can be resumed. The table goes between
docs/tuning.md's markers for this CPU (added at the end the first time).
"""
import argparse
import json
import os
import re
import subprocess

from machine import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "tuning.md")
MODELS = "ResNet50:1,MobileNetV2:1,VGG16:1,DenseNet121:1,ResNet50:32"
LAYER_MODELS = ("ResNet50", "MobileNetV2")  # each distinct layer against oneDNN, tuned


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run(cmd, log=None):
    print("+", " ".join(cmd), flush=True)
    with open(log, "w") if log else open(os.devnull, "w") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT)


def measure(a, model, batch, folder):
    name = f"{model}.b{batch}"
    path = lambda ext: os.path.join(folder, f"{name}.{ext}")
    keras = os.path.join(a.zoo, model + ".keras")
    bench = [a.cnnc, "bench", keras, "--batch", str(batch), "--threads", str(a.threads), "--vs", "keras,onnxruntime"]
    if a.force or not os.path.exists(path("untuned.json")):
        run(bench + ["--no-tuning", "--json", path("untuned.json")])
    if not a.skip_adams2019 and (a.force or not os.path.exists(path("adams2019.json"))):
        run(bench + ["--autoschedule", "adams2019", "--json", path("adams2019.json")])
    if a.force or not os.path.exists(path("tune.log")):
        if os.path.exists(path("db")):
            os.remove(path("db"))
        run([a.cnnc, "tune", keras, "--batch", str(batch), "--threads", str(a.threads), "--budget", a.budget,
             "--db", path("db"), "--curve", path("png")], log=path("tune.log"))
    if a.force or not os.path.exists(path("tuned.json")):
        run(bench + ["--db", path("db"), "--json", path("tuned.json")])
    if model in LAYER_MODELS and batch == 1 and (a.force or not os.path.exists(path("layers.json"))):
        layers(a, keras, path)


def layers(a, keras, path):
    """Every distinct conv and dense layer of the tuned model, with its tuned schedule, against
    oneDNN (benchmarks/bench_layers --net), at the tune's thread count."""
    exe = os.path.join(os.path.dirname(a.cnnc), "benchmarks", "bench_layers")
    if not os.path.exists(exe):
        exe = os.path.join(ROOT, "build", "benchmarks", "bench_layers")
    if not os.path.exists(exe):
        print(f"tuning_table: {exe} not built (needs libdnnl-dev); per-layer table skipped")
        return
    with open(path("tuned.cnn"), "w") as out:
        subprocess.run([a.cnnc, "compile", keras, "--db", path("db"), "--emit", "graph"], check=True, stdout=out)
    # Repeated in a random order, the median kept: on a shared VM a neighbour can halve one
    # run's speed (seen on a Zen 4 guest: the same layer 0.50 and 1.00 ms minutes apart), and
    # interleaving spreads that over both systems instead of charging it to whichever ran then.
    run([exe, "--net=" + path("tuned.cnn"), f"--benchmark_filter=threads:{a.threads}",
         "--benchmark_min_time=0.1", "--benchmark_repetitions=7", "--benchmark_enable_random_interleaving=true",
         "--benchmark_out_format=json", "--benchmark_out=" + path("layers.json")])


def layer_table(model, folder):
    """cnnc's time over oneDNN's per distinct layer of the tuned model (bench_layers --net)."""
    p = os.path.join(folder, f"{model}.b1.layers.json")
    if not os.path.exists(p):
        return [f"{model}: per-layer comparison not measured."]
    with open(p) as f:
        runs = json.load(f)["benchmarks"]
    medians = [b for b in runs if b.get("aggregate_name") == "median"]  # repeated runs (older files: one)
    pairs = {}
    for b in medians or runs:
        system, _, rest = b.get("run_name", b["name"]).partition("/")
        pairs.setdefault(rest.split("/batch:")[0], {})[system] = b
    rows, ratios = [], []
    for layer, pair in pairs.items():
        c, d = pair.get("cnnc"), pair.get("onednn")
        if not c or not d or c.get("error_occurred") or d.get("error_occurred"):
            why = (c or {}).get("error_message") or (d or {}).get("error_message") or "not run"
            rows.append(f"| {layer} | {why} | | | |")
            continue
        r = c["real_time"] / d["real_time"]
        ratios.append(r)
        rows.append(f"| {layer} | {c['real_time']:.3f} | {d['real_time']:.3f} | "
                    + (f"**{r:.2f}**" if r <= 1 else f"{r:.2f}") + f" | {c['%peak']:.0f}% |")
    at_most = sum(r <= 1 for r in ratios)
    head = [f"{model}, batch 1, tuned: cnnc at least as fast as oneDNN on {at_most} of {len(ratios)} distinct "
            "layers (bold; `_xN`: N layers of that workload). Each layer alone, with a bias and no epilogue, "
            "its tuned schedule, " + ("the median of repeated runs in random order" if medians else "one run")
            + "; % peak counts a direct conv's multiply-adds, so a Winograd layer may pass 100%.",
            "",
            "| layer | cnnc ms | oneDNN ms | cnnc/oneDNN | cnnc % peak |", "|---|---:|---:|---:|---:|"]
    return head + sorted(rows, key=lambda r: r.split("|")[1])


def row(model, batch, folder):
    name = os.path.join(folder, f"{model}.b{batch}")

    def load(ext, read=json.load):
        if not os.path.exists(name + ext):
            return None
        with open(name + ext) as f:
            return read(f)

    before, adams, after = load(".untuned.json"), load(".adams2019.json"), load(".tuned.json")
    log = load(".tune.log", lambda f: f.read()) or ""
    if not before and not after:
        return None
    ms = lambda r, s: (r or {}).get("systems", {}).get(s, {}).get("median_ms")
    cell = lambda v: f"{v:.2f}" if v else "-"
    ratio = lambda a, b: f"{a / b:.3f}" if a and b else "-"
    m = re.search(r"model: untuned ([\d.]+) ms, tuned ([\d.]+) ms: ([\d.]+)x .*faster in (\d+) of them", log)
    trials = sum(int(t) for t in re.findall(r"^  \S+\s+\d+\s+(\d+)\s+[\d.]+ ms", log, re.M))
    gain = f"{m.group(3)}x ({m.group(4)}/12 blocks)" if m else "not tuned"
    cu, ca, ct = ms(before, "cnnc"), ms(adams, "cnnc"), ms(after, "cnnc")
    ou, oa, ot = ms(before, "onnxruntime"), ms(adams, "onnxruntime"), ms(after, "onnxruntime")
    return (f"| {model} | {batch} | {cell(cu)} | {cell(ou)} | {ratio(cu, ou)} | {cell(ca)} | {cell(oa)} | "
            f"{ratio(ca, oa)} | {cell(ct)} | {cell(ot)} | "
            f"{ratio(ct, ot)} | {cell(ms(after or before, 'keras'))} | {gain} | {trials or '-'} |")


def render(specs, folder, cpu):
    lines = [f"On {cpu}, 2 threads ({os.path.relpath(folder, ROOT)}; `python3 benchmarks/tuning_table.py`):", "",
             "| model | batch | untuned cnnc ms | ORT ms | cnnc/ORT | Adams2019 alone ms | ORT ms | cnnc/ORT "
             "| tuned cnnc ms | ORT ms | cnnc/ORT | Keras ms | tuned vs untuned, one process | trials |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, batch in specs:
        r = row(model, batch, folder)
        lines.append(r if r else f"| {model} | {batch} | not measured |" + " |" * 11)
    for model in LAYER_MODELS:
        if (model, 1) in specs:
            lines += ["", *layer_table(model, folder)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--zoo", default="/work/keras_zoo", help="folder of tools/keras_export.py zoo")
    ap.add_argument("--models", default=MODELS, help="MODEL:BATCH,...")
    ap.add_argument("--budget", default="15m")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--force", action="store_true", help="measure again what is kept")
    # Adams2019 takes minutes to schedule a model (493 s for ResNet50 on Zen 4) and has never come
    # near the heuristics (8x ONNX Runtime's time): a session short of time leaves its column "-".
    ap.add_argument("--skip-adams2019", action="store_true", help="leave the Adams2019 column unmeasured")
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args()
    specs = [(m, int(b)) for m, b in (s.split(":") for s in a.models.split(","))]
    cpu = cpu_name()
    folder = os.path.join(HERE, "results", "tuning", slug(cpu))
    os.makedirs(folder, exist_ok=True)
    if not a.render_only:
        for model, batch in specs:
            measure(a, model, batch, folder)
    # Every model measured here stays in the table, not only those of this run's --models.
    shown = [(m, int(b)) for m, b in (x.split(":") for x in MODELS.split(","))]
    table = render(shown + [s for s in specs if s not in shown], folder, cpu)
    begin, end = f"<!-- tuning-table {slug(cpu)} -->", f"<!-- end tuning-table {slug(cpu)} -->"
    with open(DOC) as f:
        doc = f.read()
    block = f"{begin}\n{table}\n{end}"
    doc = (doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]) if begin in doc else doc.rstrip() + "\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc)
    print(table)


if __name__ == "__main__":
    main()
