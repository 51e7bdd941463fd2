#!/usr/bin/env python3
"""Regenerates docs/keras_zoo.md: every model of keras.applications (the Keras Applications
table's 19 and the newer ones) and the variants at other input sizes and class counts, compiled
by cnnc and compared with Keras' own output on the same random weights and input.

  tools/setup_keras.sh                                      # once: TensorFlow + Keras (optional)
  python3 tools/keras_export.py zoo --out /work/keras_zoo   # the .keras files, inputs, Keras outputs
  python3 tools/keras_export.py float64 --out /work/keras_zoo --models M1,M2,...  # the exact
        # answer: Keras in float64 on the same weights (both float32 results are measured against it)
  python3 tools/keras_zoo.py --zoo /work/keras_zoo          # this: runs `cnnc compare`, writes the doc

Only the export needs TensorFlow; this script needs the built cnnc and the exported files.
"""
import argparse, concurrent.futures, csv, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    """The CPU as /proc/cpuinfo names it, with its family and model."""
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    except OSError:
        return "unknown"
    return f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}), " \
           f"{os.cpu_count()} cores"


def keras_version(exported):
    versions = sorted({m.get("keras_version", "?") for m in exported.values()})
    return ", ".join(versions) or "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="/work/keras_zoo", help="folder written by keras_export.py zoo")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "keras_zoo.md"))
    ap.add_argument("--models", default="", help="comma-separated subset")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="models compared at once")
    ap.add_argument("--cache", help="kernel cache to use (default: a new, empty one)")
    ap.add_argument("--compile-times", help="JSON {model: cold compile seconds} of the run that "
                    "filled --cache, reported instead of this run's warm ones")
    args = ap.parse_args()
    cold = json.load(open(args.compile_times)) if args.compile_times else {}

    table = os.path.join(ROOT, "tools", "reference", "keras_applications.csv")
    with open(table) as f:
        ref = {r["model"]: r for r in csv.DictReader(f)}
    # The table's models, then every other application exported, then the variants.
    exported = {}
    for f in sorted(os.listdir(args.zoo)) if os.path.isdir(args.zoo) else []:
        if f.endswith(".json"):
            meta = json.load(open(os.path.join(args.zoo, f)))
            if "model" in meta:
                exported[meta["model"]] = meta
    variant = lambda n: exported[n].get("application", n) != n
    names = list(ref) + sorted(n for n in exported if n not in ref and not variant(n)) + \
        sorted(n for n in exported if variant(n))
    names = [m for m in names if not args.models or m in args.models.split(",")]

    def one(name):
        base = os.path.join(args.zoo, name)
        meta = exported.get(name, {})
        row = {"model": name, "keras_params": meta.get("params"),
               "depth": ref[name]["depth"] if name in ref else "",
               "input": "x".join(str(d) for d in meta.get("input_shape", [])[1:3])}
        if not os.path.exists(base + ".keras"):
            row["status"] = "not exported"
            return row
        # The logits where the model ends in a softmax: random weights saturate a deep net's
        # softmax into a one-hot vector, whose relative error is 0 or 1 and says nothing.
        logits = os.path.exists(base + ".logits.npy")
        row["compared"] = "logits" if logits else "output"
        expect = base + (".logits" if logits else ".output")

        def compare(expected):
            cmd = [args.cnnc, "compare", base + ".keras", "--input", base + ".input.npy", "--expect",
                   expected, "--tolerance", str(args.tolerance), "--threads", "1"] + (["--logits"] if logits else [])
            p = subprocess.run(cmd, capture_output=True, text=True)
            try:
                return json.loads(p.stdout.strip().splitlines()[-1]), ""
            except (IndexError, ValueError):
                return None, (p.stderr.strip().splitlines() or ["?"])[-1][:200]

        r, err = compare(expect + ".npy")
        if r is None:
            row["status"] = "error: " + err
        else:
            if name in cold:  # measured by an earlier run with an empty cache
                r["compile_seconds"] = cold[name]
            r.pop("model")  # Keras' own name of the model (resnet50 for ResNet50_160_c10 too)
            row.update(r)
            row["status"] = "ok" if r["pass"] and r["params"] == row["keras_params"] else "MISMATCH"
            # The exact answer (keras_export.py float64: Keras in float64, same weights): where
            # random weights make a model chaotic, Keras' own float32 result is far from it too,
            # and cnnc can only be judged against it.
            row["keras_vs_exact"] = meta.get("keras_float32_vs_float64")
            # Keras' float32 at batch 2 (other kernel blockings): how far its own float32 results
            # spread where the model amplifies rounding (keras_export.py float64 records it).
            row["keras_batch2_vs_exact"] = meta.get("keras_float32_batch2_vs_float64")
            keras_spread = max(v for v in (row["keras_vs_exact"], row["keras_batch2_vs_exact"], 0)
                               if v is not None)
            if os.path.exists(expect + "64.npy"):
                r64, _ = compare(expect + "64.npy")  # its kernels are in the cache now
                row["cnnc_vs_exact"] = r64["max_rel_error"] if r64 else None
            if row["status"] == "MISMATCH" and r["params"] == row["keras_params"] and \
                    row.get("cnnc_vs_exact") is not None and row["keras_vs_exact"] is not None and \
                    row["cnnc_vs_exact"] <= max(args.tolerance, 2 * keras_spread):
                row["status"] = "float32-chaotic"
        print(json.dumps({k: row.get(k) for k in ("model", "status", "compared", "max_rel_error",
                                                   "compile_seconds")}), flush=True)
        return row

    # Cold compile times: an empty kernel cache of this run's own (or --cache, warm, with the
    # cold times of the run that filled it from --compile-times).
    cache = args.cache or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cnnc-zoo-cache-{os.getpid()}")
    os.environ["CNNC_CACHE_DIR"] = cache
    # One model per core at a time (compiling is single-threaded); each runs on one thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(one, names))

    lines = ["# Keras Applications through cnnc", "",
             "Every model of `keras.applications` in Keras " + keras_version(exported) + ": the 19 of the Keras",
             "Applications table (tools/reference/keras_applications.csv) first, then MobileNetV3,",
             "EfficientNetB1-B7, EfficientNetV2 and ConvNeXt, each at its default input size, then",
             "applications at other input sizes and class counts (NAME_SIZE_cCLASSES, as users fine-tune",
             "them). Each is built by `keras.applications.<Name>(weights=None, ...)` with random weights",
             "(BatchNorm statistics, biases, LayerNormalization and LayerScale weights randomised too), saved",
             "as `.keras`, imported by cnnc, compiled with Halide for this CPU and run on the same input as",
             "Keras (raw pixels in [0, 255) for the models that preprocess inside: EfficientNet, ConvNeXt,",
             "MobileNetV3; [-1, 1) for the others). Regenerate with the three commands at the top of",
             "`tools/keras_zoo.py`. Compared: the logits (what goes into the final softmax: random",
             "weights saturate a deep net's softmax into a one-hot vector, whose relative error is 0, or 1",
             "when two huge logits swap) where the model ends in a softmax, else the output. Error =",
             "max |cnnc - Keras| over them; relative = that divided by max |Keras|. The exact answer is",
             "Keras computing in float64 on the same weights and input (`keras_export.py float64`): both",
             "float32 results, Keras' and cnnc's, are measured against it too. Depth is the table's (Keras counts layers with weights); ours counts",
             "IR layers with weights (a SeparableConv2D is two). Compile time: cold (the kernel cache is",
             "emptied first: every kernel compiled by Halide and linked; kernels an earlier model of the run",
             "compiled are reused, so VGG19 after VGG16 takes 0.1 s), each model compiled and run on one",
             f"thread, {args.jobs} model(s) at a time. RegNet and ResNetRS were tf.keras 2 applications;",
             "Keras 3 does not have them.", "", f"Machine: {cpu_model()}.", "",
             "| model | input | params (cnnc) | params (Keras) | depth (table) | layers with weights (cnnc) | weights MB | compared | max abs error | max rel error | cnnc vs exact | Keras vs exact | compile s | run ms (batch 1) | status |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        f = lambda k, fmt: (fmt.format(r[k]) if r.get(k) is not None else "")
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["model"], r["input"], f("params", "{:,}"), f("keras_params", "{:,}"), r["depth"], f("layers_with_weights", "{}"),
            f("weight_mb", "{:.1f}"), r.get("compared", ""), f("max_abs_error", "{:.2e}"), f("max_rel_error", "{:.2e}"),
            f("cnnc_vs_exact", "{:.2e}"), f("keras_vs_exact", "{:.2e}"), f("compile_seconds", "{:.1f}"), f("run_ms", "{:.0f}"), r["status"]))
    ok = sum(r["status"] == "ok" for r in rows)
    chaotic = [r for r in rows if r["status"] == "float32-chaotic"]
    lines += ["", f"{ok} of {len(rows)} models match Keras within a relative error of {args.tolerance:g} "
              "with equal parameter counts."]
    if chaotic:
        keras_own = lambda r: f"{r['keras_vs_exact']:.2g}" + (
            f" ({r['keras_batch2_vs_exact']:.2g} at batch 2)"
            if r.get("keras_batch2_vs_exact") is not None else "")
        lines += ["", ", ".join(r["model"] for r in chaotic) + " (float32-chaotic): equal parameter counts, "
                  "but their random weights make them chaotic in float32: Keras' own float32 logits are "
                  + ", ".join(keras_own(r) for r in chaotic) + " (relative) from the exact "
                  "ones, and cnnc's " + ", ".join(f"{r['cnnc_vs_exact']:.2g}" for r in chaotic) + ": no "
                  "float32 implementation can match another closer than their rounding spreads; cnnc is "
                  "as close to the exact answer as Keras' float32 results are (within 2x of the "
                  "farthest, where `keras_export.py float64` ran Keras at batch 2 too)."]
    exact = lambda r: (f" (from the exact answer: cnnc {r['cnnc_vs_exact']:.2g}, Keras' float32 "
                       f"{r['keras_vs_exact']:.2g})" if r.get("cnnc_vs_exact") is not None and
                       r.get("keras_vs_exact") is not None else "")
    bad = [r["model"] + exact(r) for r in rows if r["status"] not in ("ok", "float32-chaotic")]
    if bad:
        lines += ["", f"Not matched: {', '.join(bad)}."]
    lines += [""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out}: {ok}/{len(rows)} ok")
    return 0 if ok + len(chaotic) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
