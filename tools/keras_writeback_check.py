#!/usr/bin/env python3
"""Trained weights written back to Keras, checked by Keras: each model is trained one epoch by
`cnnc train --save OUT.keras` and `--save OUT.weights.h5`, then Keras loads both (load_model, and
load_weights into the original model); their predictions must equal `cnnc run`'s on the trained
.keras within 1e-4 (cnnc and Keras then hold the same weights, BatchNorm statistics included),
and differ from the untrained model's.

    tools/setup_keras.sh                          # once: TensorFlow + Keras
    python3 tools/keras_writeback_check.py        # prints one line per model; exit 1 on a mismatch

Models: the Fashion-MNIST net Keras trained (tests/fixtures/fashion), on Fashion-MNIST; the
gradient fixtures (BatchNorm, depthwise, residual), on random images of their input shape.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def idx(path):
    data = gzip.open(path).read()
    return np.frombuffer(data, np.uint8, offset=16 if data[3] == 3 else 8)


def cnnc(*args):
    out = subprocess.run([os.path.join(ROOT, "build", "cnnc"), *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"cnnc {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def check(name, model, data, x, work):
    """Trains `model` one epoch on `data`, writes it back both ways, and compares Keras'
    predictions on `x` with cnnc's on the trained .keras."""
    trained_keras = os.path.join(work, name + ".keras")
    trained_h5 = os.path.join(work, name + ".weights.h5")
    common = ["--data", data, "--epochs", "1", "--batch", "32", "--no-progress", "--no-test", "--seed", "1"]
    cnnc("train", model, *common, "--save", trained_keras)
    cnnc("train", model, *common, "--save", trained_h5)
    np.save(os.path.join(work, "in.npy"), x)
    cnnc("run", trained_keras, "--input", os.path.join(work, "in.npy"), "-o", os.path.join(work, "out.npy"))
    ours = np.load(os.path.join(work, "out.npy"))
    loaded = keras.models.load_model(trained_keras, compile=False)
    into = keras.models.load_model(model, compile=False)
    before = into.predict(x, verbose=0)
    into.load_weights(trained_h5)
    scale = max(1.0, float(np.abs(ours).max()))
    moved = float(np.abs(before - ours).max()) / scale
    errors = [float(np.abs(m.predict(x, verbose=0) - ours).max()) / scale for m in (loaded, into)]
    ok = max(errors) <= 1e-4 and moved > 1e-3
    print(f"{name:18s} trained vs untrained {moved:.3g}; Keras vs cnnc: .keras {errors[0]:.2g}, "
          f"load_weights {errors[1]:.2g}  {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as work:
        x = idx(f"{FASHION}/t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28, 1)[:256].astype("float32") / 255
        ok &= check("fashion_trained", os.path.join(ROOT, "tests/fixtures/fashion/fashion_trained.keras"),
                    "fashion-mnist", x, work)
        for name in ("batchnorm_net", "strided_depthwise", "residual"):
            model = os.path.join(ROOT, "tests/fixtures/gradients", name + ".keras")
            m = keras.models.load_model(model, compile=False)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((256, *m.input_shape[1:])).astype("float32")
            y = rng.integers(0, m.output_shape[-1], 256).astype("int64")
            np.save(os.path.join(work, "x.npy"), x)
            np.save(os.path.join(work, "y.npy"), y)
            ok &= check(name, model, os.path.join(work, "x.npy") + "," + os.path.join(work, "y.npy"), x, work)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
