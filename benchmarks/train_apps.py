#!/usr/bin/env python3
"""Training keras.applications models side by side: `cnnc train MODEL.keras` and Keras'
`model.fit` on the same model file (weights=None, a small input size and class count, as when
fine-tuning on a small dataset; UNet: an encoder-decoder of U-Net's shape built here), the same random images and labels, batch, optimiser (Adam
1e-3), epochs and threads, one after the other in this run. Prints a Markdown table (or writes
it with --out).

    python3 benchmarks/train_apps.py [--models MobileNetV3Small,EfficientNetB0,ConvNeXtTiny,UNet]
        [--size 96] [--classes 10] [--images 64] [--batch 4] [--epochs 3] [--threads 2]
        [--cnnc build/cnnc] [--work /tmp/train_apps] [--out FILE]

Needs TensorFlow/Keras (tools/setup_keras.sh); not part of CI. Images per second is the median
over the epochs after the first (cnnc's first epoch includes nothing extra, Keras' its graph
tracing); compile is cnnc's wall time before its first step (every kernel of the training and
inference programs compiled, cold: an empty kernel cache); peak RSS is each process's.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402

KERAS_CHILD = r"""
import os, sys, resource, time, statistics
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
threads = int(sys.argv[5])
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras
model = keras.models.load_model(sys.argv[1], compile=False)
x, y = np.load(sys.argv[2]), np.load(sys.argv[3]).reshape(-1).astype("int64")
batch, epochs = int(sys.argv[4]), int(sys.argv[6])
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
times = []
class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t0 = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t0)
h = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()])
print(" ".join(f"{t:.3f}" for t in times), h.history["loss"][-1],
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def unet(input_shape, classes):
    """An encoder-decoder of U-Net's shape (not in keras.applications): two strided-conv levels
    down with GroupNormalization, Conv2DTranspose and UpSampling2D (bilinear) back up with skip
    connections concatenated, then a classifier, so it trains on the same labels as the others."""
    import keras
    L = keras.layers
    x = keras.Input(input_shape)
    h = L.Rescaling(1 / 255)(x)
    e1 = L.Conv2D(32, 3, padding="same", activation="relu")(h)
    d1 = L.Conv2D(64, 3, strides=2, padding="same")(e1)
    d1 = L.Activation("swish")(L.GroupNormalization(8)(d1))
    d2 = L.Conv2D(128, 3, strides=2, padding="same")(d1)
    d2 = L.Activation("swish")(L.GroupNormalization(8)(d2))
    u1 = L.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(d2)
    u1 = L.Conv2D(64, 3, padding="same", activation="relu")(L.Concatenate()([u1, d1]))
    u2 = L.UpSampling2D(2, interpolation="bilinear")(u1)
    u2 = L.Conv2D(32, 3, padding="same", activation="relu")(L.Concatenate()([u2, e1]))
    y = L.Dense(classes, activation="softmax")(L.GlobalAveragePooling2D()(u2))
    return keras.Model(x, y, name="UNet")


def export(name, args):
    """NAME_SIZE.keras, .x.npy (raw pixels in [0, 255)) and .y.npy under args.work."""
    import numpy as np
    import keras
    base = os.path.join(args.work, f"{name}_{args.size}")
    if not os.path.exists(base + ".keras"):
        keras.utils.set_random_seed(1)
        if name == "UNet":
            model = unet((args.size, args.size, 3), args.classes)
        else:
            model = getattr(keras.applications, name)(
                weights=None, input_shape=(args.size, args.size, 3), classes=args.classes)
        model.save(base + ".keras")
        keras.backend.clear_session()
    rng = np.random.default_rng(0)
    np.save(base + ".x.npy", rng.uniform(0, 255, (args.images, args.size, args.size, 3)).astype("float32"))
    np.save(base + ".y.npy", rng.integers(0, args.classes, (args.images, 1)).astype("float32"))
    return base


def child(cmd, env=None):
    """Runs cmd; its stdout, peak RSS (MiB) and wall time."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read()
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return out, usage.ru_maxrss / 1024, time.perf_counter() - t0


def run_cnnc(base, args):
    log = base + ".cnnc.csv"
    env = dict(os.environ, CNNC_CACHE_DIR=tempfile.mkdtemp(prefix="cnnc-cache-", dir=args.work))
    cmd = [args.cnnc, "train", base + ".keras", "--data", f"{base}.x.npy,{base}.y.npy", "--epochs",
           str(args.epochs), "--batch", str(args.batch), "--optimizer", "adam", "--lr", "0.001",
           "--threads", str(args.threads), "--no-progress", "--log", log]
    _, rss, wall = child(cmd, env)
    with open(log) as f:
        rows = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows]
    later = seconds[1:] or seconds
    return {"ips": args.images // args.batch * args.batch / statistics.median(later),
            "compile": wall - sum(seconds), "loss": float(rows[-1]["loss"]), "rss": rss}


def run_keras(base, args):
    out, rss, _ = child([sys.executable, "-c", KERAS_CHILD, base + ".keras", base + ".x.npy",
                         base + ".y.npy", str(args.batch), str(args.threads), str(args.epochs)])
    *times, loss, _ = out.split()
    seconds = [float(t) for t in times]
    later = seconds[1:] or seconds
    return {"ips": args.images // args.batch * args.batch / statistics.median(later),
            "loss": float(loss), "rss": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="MobileNetV3Small,EfficientNetB0,ConvNeXtTiny")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--work", default="/tmp/train_apps")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    lines = [f"Machine: {cpu_name()}, {args.threads} threads for both. {args.images} random "
             f"{args.size}x{args.size} images, {args.classes} classes, batch {args.batch}, Adam 1e-3, "
             f"{args.epochs} epochs (`python3 benchmarks/train_apps.py --models {args.models} "
             f"--size {args.size} --images {args.images} --batch {args.batch} --epochs {args.epochs}`).", "",
             "| model | cnnc images/s | Keras images/s | cnnc / Keras time | cnnc compile s (cold) | "
             "cnnc final loss | Keras final loss | cnnc peak RSS MiB | Keras peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in args.models.split(","):
        base = export(name, args)
        try:
            c = run_cnnc(base, args)
        except RuntimeError as e:
            lines.append(f"| {name} | failed: {str(e).strip().splitlines()[-1][:160]} |||||||")
            print(lines[-1], flush=True)
            continue
        k = run_keras(base, args)
        lines.append(f"| {name} | {c['ips']:.1f} | {k['ips']:.1f} | {k['ips'] / c['ips']:.2f} | "
                     f"{c['compile']:.0f} | {c['loss']:.3f} | {k['loss']:.3f} | {c['rss']:.0f} | {k['rss']:.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
