#!/usr/bin/env python3
"""Regenerates docs/onnx_torchvision.md: torchvision's classification models, with random weights,
exported to ONNX by PyTorch itself (`torch.onnx.export`, both of its exporters: the default one
built on torch.export, "dynamo", and the older TorchScript tracer most deployed files came from),
imported by cnnc's ONNX reader and compared with ONNX Runtime's output on the same input; with
--bench, also `cnnc bench MODEL.onnx --vs onnxruntime` side by side.

  python3 -m venv --system-site-packages /work/torchenv
  /work/torchenv/bin/pip install torch torchvision onnxscript        # several GB; not CI's
  /work/torchenv/bin/python tools/torchvision_onnx.py --dir /work/torchvision_onnx [--bench]
  /work/torchenv/bin/python tools/torchvision_onnx.py --fixtures tests/fixtures/onnx

Needs the built cnnc and onnxruntime; not run by CI (PyTorch is too large for it). The exported
files are kept in --dir (NAME.EXPORTER.onnx) and reused by the next run.
"""
import argparse, collections, json, os, subprocess, sys, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from keras_zoo import cpu_model  # noqa: E402
from onnx_zoo import cnnc_compare, operator_census, ort_output  # noqa: E402

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121",
          "googlenet", "squeezenet1_1", "vgg11"]
EXPORTERS = {"dynamo": True, "torchscript": False}


def build(name, seed):
    """The model with torchvision's own random initialisation, and BatchNorm statistics and affine
    parameters drawn too (torchvision starts them at mean 0, variance 1, scale 1, shift 0, which
    would make folding them a no-op)."""
    import torch
    import torchvision
    torch.manual_seed(seed)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    m = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)
    return m


def export(name, exporter, path, seed):
    import torch
    m = build(name, seed)
    x = torch.zeros(1, 3, 224, 224)
    t0 = time.perf_counter()
    torch.onnx.export(m, (x,), path, dynamo=EXPORTERS[exporter])
    return time.perf_counter() - t0


def fixture_net():
    """A small net in the patterns PyTorch users write, for tests/fixtures/onnx/torch_*: a conv with
    BatchNorm, a squeeze-and-excitation gate from x.mean((2, 3), keepdim=True), torch.amax over the
    map, AdaptiveAvgPool2d(1) then x.view(x.size(0), -1) (Shape, Gather, Unsqueeze, Concat when the
    batch is dynamic), torch.flatten of a 4x4 map before a Linear, two zero biases (the TorchScript
    exporter writes the second as an Identity of the first)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.c2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
            self.se1 = torch.nn.Conv2d(8, 4, 1)
            self.se2 = torch.nn.Conv2d(4, 8, 1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.map_fc = torch.nn.Linear(8 * 4 * 4, 6)
            self.fc = torch.nn.Linear(8 + 8 + 6, 10)

        def forward(self, x):
            y = torch.relu(self.bn(self.c1(x)))
            y = self.c2(y)
            y = y * torch.sigmoid(self.se2(torch.relu(self.se1(y.mean((2, 3), keepdim=True)))))
            a = self.pool(y).view(y.size(0), -1)
            b = torch.amax(y, dim=(2, 3))
            c = self.map_fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 4), 1))
            return torch.log_softmax(self.fc(torch.cat([a, b, c], 1)), 1)

    torch.manual_seed(1)
    m = Net().eval()
    with torch.no_grad():
        m.bn.running_mean.normal_(0, 0.2)
        m.bn.running_var.uniform_(0.5, 1.5)
        m.c2.bias.zero_()
        m.se2.bias.zero_()
    return m


def fixture_decoder():
    """An encoder-decoder's upsampling as PyTorch writes it: ConvTranspose2d (stride 2, and stride 2
    with padding 1 and output_padding 1), nn.Upsample nearest and bilinear (align_corners False),
    torch.maximum, a skip torch.cat."""
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.up1 = torch.nn.ConvTranspose2d(6, 4, 2, stride=2)
            self.up2 = torch.nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, bias=False)
            self.near = torch.nn.Upsample(scale_factor=2, mode="nearest")
            self.bilinear = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.head = torch.nn.Conv2d(4 + 6 + 6 + 3, 5, 1)

        def forward(self, x):
            d = torch.relu(self.down(x))
            u = torch.maximum(self.up1(d), self.up2(d))
            return self.head(torch.cat([u, self.near(torch.sigmoid(d)), self.bilinear(d), x], 1))

    torch.manual_seed(2)
    return Decoder().eval()


def write_fixtures(folder):
    """tests/fixtures/onnx/torch_{,decoder_}{dynamo,torchscript}: fixture_net and fixture_decoder
    exported with a dynamic batch by each exporter (dynamo's weights in NAME.onnx.data, external
    data, as it writes them by default), ONNX Runtime's output for a seeded batch of 2 beside each."""
    import onnxruntime as ort
    import torch
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((2, 3, 8, 8)).astype(np.float32))
    for prefix, m in (("torch_", fixture_net()), ("torch_decoder_", fixture_decoder())):
        for exporter, dynamo in EXPORTERS.items():
            base = os.path.join(folder, prefix + exporter)
            if dynamo:
                torch.onnx.export(m, (x,), base + ".onnx", dynamo=True, input_names=["x"],
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
            else:
                torch.onnx.export(m, (x,), base + ".onnx", dynamo=False, input_names=["x"],
                                  dynamic_axes={"x": {0: "batch"}})
            sess = ort.InferenceSession(base + ".onnx", providers=["CPUExecutionProvider"])
            y = sess.run(None, {"x": x.numpy()})[0]
            with torch.no_grad():
                assert np.max(np.abs(y - m(x).numpy())) < 1e-5
            np.save(base + ".input.npy", x.numpy())
            np.save(base + ".output.npy", y)
            print("wrote", base + ".onnx")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/work/torchvision_onnx", help="where the exports and inputs are kept")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "onnx_torchvision.md"))
    ap.add_argument("--models", default="", help="comma-separated subset")
    ap.add_argument("--exporters", default="dynamo,torchscript")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bench", action="store_true", help="also cnnc bench --vs onnxruntime (dynamo exports)")
    ap.add_argument("--bench-seconds", type=float, default=5.0)
    ap.add_argument("--reuse-bench", action="store_true",
                    help="take the side-by-side results already in --dir (NAME.dynamo.bench.json); bench the rest")
    ap.add_argument("--fixtures", metavar="DIR", help="only write the test fixtures torch_*.onnx to DIR")
    a = ap.parse_args()
    if a.fixtures:
        write_fixtures(a.fixtures)
        return 0
    import onnx
    import torch
    os.makedirs(a.dir, exist_ok=True)
    names = [n for n in MODELS if not a.models or n in a.models.split(",")]
    exporters = a.exporters.split(",")
    x = np.random.default_rng(a.seed).standard_normal((1, 3, 224, 224)).astype(np.float32)
    x_path = os.path.join(a.dir, "input.npy")
    np.save(x_path, x)

    rows = []
    for name in names:
        for exporter in exporters:
            path = os.path.join(a.dir, f"{name}.{exporter}.onnx")
            row = {"model": name, "exporter": exporter}
            try:
                if not os.path.exists(path):
                    # A child process per export: the exporter's memory goes back after each model.
                    p = subprocess.run([sys.executable, __file__, "--export-one", name, exporter, path,
                                        str(a.seed)], capture_output=True, text=True)
                    if p.returncode != 0:
                        raise RuntimeError("export failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:300])
                m = onnx.load(path, load_external_data=False)
                row["opset"] = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
                row["nodes"] = len(m.graph.node)
                row["ops"] = collections.Counter(n.op_type for n in m.graph.node)
                y = ort_output(path, x)
                with torch.no_grad():
                    y_torch = build(name, a.seed)(torch.from_numpy(x)).numpy()
                row["ort_vs_torch"] = float(np.max(np.abs(y - y_torch)) / max(np.max(np.abs(y_torch)), 1e-30))
                ort_out = os.path.join(a.dir, f"{name}.{exporter}.ort.npy")
                np.save(ort_out, y)
                t0 = time.perf_counter()
                row["cnnc"] = cnnc_compare(a.cnnc, path, x_path, ort_out, a.tolerance)
                row["seconds"] = time.perf_counter() - t0
                if a.bench and exporter == exporters[0]:
                    bench_json = os.path.join(a.dir, f"{name}.{exporter}.bench.json")
                    if not (a.reuse_bench and os.path.exists(bench_json)):
                        subprocess.run([a.cnnc, "bench", path, "--vs", "onnxruntime", "--min-time",
                                        str(a.bench_seconds), "--json", bench_json],
                                       capture_output=True, text=True, check=True)
                    with open(bench_json) as f:
                        row["bench"] = json.load(f)
            except Exception as e:  # noqa: BLE001 - a model that fails is a row of the table
                row["error"] = f"{type(e).__name__}: {e}"[:400]
            rows.append(row)
            print(name, exporter, "error: " + row["error"] if "error" in row else
                  f"max rel err vs ORT {row['cnnc']['max_rel_error']:.2e}", flush=True)

    ok = [r for r in rows if "error" not in r and r["cnnc"]["pass"]]
    lines = [
        "# torchvision through ONNX",
        "",
        "torchvision's classification models (torchvision " + __import__("torchvision").__version__.split("+")[0] +
        ", PyTorch " + torch.__version__.split("+")[0] + "),",
        "random weights (torchvision's initialisation;",
        "BatchNorm statistics and affine parameters drawn too), exported by `torch.onnx.export` with each",
        "of PyTorch's exporters: `dynamo` (torch.export, the default since PyTorch 2.9) and `torchscript`",
        "(the tracer, `dynamo=False`, which made most ONNX files in circulation). Each file imported by",
        "cnnc's ONNX reader, compiled and run on one seeded N(0, 1) 1x3x224x224 input, and its output",
        "compared with ONNX Runtime's on the same input (max |cnnc - ORT| / max |ORT|); ORT vs PyTorch",
        "itself is the exporter's own error. Regenerate: `python tools/torchvision_onnx.py --bench` in an",
        "environment with PyTorch (the script's docstring); a compile time near 0 means the kernels came",
        "from the disk cache.",
        "",
        f"Machine: {cpu_model()}. {len(ok)} of {len(rows)} exports within {a.tolerance:g} of ONNX Runtime.",
        "",
        "| model | exporter | opset | ONNX nodes | params | cnnc kernels | max rel. error vs ORT | ORT vs PyTorch | compile s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['exporter']} | {r.get('opset', '')} | {r.get('nodes', '')} | | | "
                         f"{r['error']} | | |")
            continue
        c = r["cnnc"]
        lines.append(f"| {r['model']} | {r['exporter']} | {r['opset']} | {r['nodes']} | {c['params']:,} | "
                     f"{c['kernels']} | {c['max_rel_error']:.2e} | {r['ort_vs_torch']:.1e} | "
                     f"{c['compile_seconds']:.1f} |")
    benched = [r for r in rows if "bench" in r]
    if benched:
        lines += ["", "## Side by side with ONNX Runtime", "",
                  f"`cnnc bench NAME.{exporters[0]}.onnx --vs onnxruntime --min-time {a.bench_seconds:g}`: batch 1, "
                  "both on all cores, runs alternating; median time per image. cnnc untuned (its heuristic "
                  "schedules). The FMA peak is measured at the start of each bench; on a shared virtual "
                  "machine it moves between runs, so compare the ratios, which come from the same run.", "",
                  "| model | cnnc ms | ONNX Runtime ms | cnnc / ORT | cnnc GFLOP/s | FMA peak measured, GFLOP/s | % of it |",
                  "|---|---|---|---|---|---|---|"]
        for r in benched:
            s = r["bench"]["systems"]
            c, o = s["cnnc"], s["onnxruntime"]
            lines.append(f"| {r['model']} | {c['median_ms']:.2f} | {o['median_ms']:.2f} | "
                         f"{c['median_ms'] / o['median_ms']:.2f} | {c['gflops']:.1f} | "
                         f"{r['bench']['peak_gflops']:.0f} | {c['pct_peak']:.1f}% |")
    lines += ["", operator_census(rows, "all files")]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", a.out)
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--export-one":
        print(export(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
        sys.exit(0)
    sys.exit(main())
