#!/usr/bin/env python3
"""Training side by side: `cnnc train` and Keras `model.fit` on the same net (models/
fashion_mnist_cnn.cnn, written out as the same Keras layers), the same data (Debian's
Fashion-MNIST, the last 10% held out for validation), batch, optimiser, epochs and threads, on
this machine, one after the other in this run. Regenerates docs/training_vs_keras.md.

    python3 benchmarks/train_vs_keras.py [--epochs 15] [--batch 128] [--threads 2]
        [--cnnc build/cnnc] [--out docs/training_vs_keras.md]

Needs TensorFlow/Keras (tools/setup_keras.sh); not part of CI. Time per epoch is the training
pass only (Keras: its fit epoch minus the validation pass is not separable, so both include the
validation pass over 6,000 images); time to 92% is the sum of epoch times until the test
accuracy, evaluated after each epoch outside the timed part, first reaches 92%.
"""
import argparse
import csv
import gzip
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = "/usr/share/datasets/fashion-mnist"
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402


def idx(name, offset):
    import numpy as np
    with gzip.open(os.path.join(DATA, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def run_cnnc(args, log):
    cmd = [args.cnnc, "train", os.path.join(ROOT, "models/fashion_mnist_cnn.cnn"), "--data",
           "fashion-mnist", "--epochs", str(args.epochs), "--batch", str(args.batch),
           "--optimizer", "adam", "--lr", "0.001", "--validation-split", "0.1", "--threads",
           str(args.threads), "--seed", str(args.seed), "--test-each-epoch", "--no-progress",
           "--log", log, "--curves", os.path.join(ROOT, "docs/training_fashion_mnist.svg")]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(log) as f:
        logs = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    # The peak resident set of the cnnc process (the only child so far), in MiB.
    return logs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_keras(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    keras.utils.set_random_seed(args.seed)
    x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y = idx("train-labels-idx1-ubyte.gz", 8).astype("int64")
    xt = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    yt = idx("t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(),
        L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPooling2D(),
        L.Flatten(), L.Dropout(0.5), L.Dense(128, activation="relu"),
        L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    logs = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs_=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs_=None):
            seconds = time.perf_counter() - self.t0  # includes the validation pass, as cnnc's
            test_loss, test_acc = self.model.evaluate(xt, yt, batch_size=args.batch, verbose=0)
            logs.append({"epoch": epoch + 1, "seconds": seconds, "loss": logs_["loss"],
                         "accuracy": logs_["accuracy"], "val_accuracy": logs_["val_accuracy"],
                         "test_accuracy": test_acc})
            print(f"keras epoch {epoch + 1}: {seconds:.1f} s, test accuracy {test_acc:.4f}",
                  flush=True)

    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, validation_split=0.1,
              shuffle=True, verbose=0, callbacks=[Timer()])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this Python process, MiB
    return logs, rss, tf.__version__, keras.__version__


def chart(ours, theirs, path):
    """Training loss and test accuracy of both against cumulative training time (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name, logs in (("cnnc", ours), ("Keras", theirs)):
        t, total = [], 0.0
        for e in logs:
            total += e["seconds"]
            t.append(total)
        a.plot(t, [e["loss"] for e in logs], marker="o", label=name)
        b.plot(t, [e["test_accuracy"] for e in logs], marker="o", label=name)
    a.set(xlabel="training time (s)", ylabel="training loss", title="loss")
    b.set(xlabel="training time (s)", ylabel="test accuracy", title="test accuracy")
    b.axhline(0.92, color="grey", linestyle="--", linewidth=1)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def time_to(logs, target):
    total = 0.0
    for e in logs:
        total += e["seconds"]
        if e["test_accuracy"] >= target:
            return total, int(e["epoch"])
    return None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build/cnnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/training_vs_keras.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours, our_rss = run_cnnc(args, os.path.join(tmp, "cnnc.csv"))
    theirs, their_rss, tf_version, keras_version = run_keras(args)

    def row(name, logs, rss):
        # The first epoch includes compilation (cnnc: kernels from the cache or JIT; Keras: tracing).
        steady = [e["seconds"] for e in logs[1:]] or [logs[0]["seconds"]]
        t92, e92 = time_to(logs, 0.92)
        return {"name": name, "median": statistics.median(steady), "first": logs[0]["seconds"],
                "t92": t92, "e92": e92, "final": logs[-1]["test_accuracy"],
                "best": max(e["test_accuracy"] for e in logs), "rss": rss}

    a, b = row("cnnc", ours, our_rss), row("Keras", theirs, their_rss)
    fmt = lambda t: "not reached" if t is None else f"{t:.1f} s"  # noqa: E731
    lines = [
        "# Training: cnnc and Keras side by side",
        "",
        "Regenerated by `python3 benchmarks/train_vs_keras.py --epochs "
        f"{args.epochs} --batch {args.batch} --threads {args.threads}` (needs TensorFlow: "
        "tools/setup_keras.sh). The net is models/fashion_mnist_cnn.cnn (conv 32 3x3 + max pool, "
        "conv 64 3x3 + max pool, dropout 0.5, dense 128, dense 10 softmax; the same layers in "
        "Keras), trained on Debian's Fashion-MNIST (54,000 training images, the last 6,000 held "
        "out for validation), Adam 1e-3, sparse categorical cross-entropy, shuffled each epoch; "
        "the test accuracy is over the 10,000 t10k images after each epoch (not timed).",
        "",
        f"Machine: {cpu_name()}, {args.threads} threads for both. "
        f"TensorFlow {tf_version}, Keras {keras_version}.",
        "",
        "| | time per epoch (median of epochs 2..) | first epoch | time to 92% test accuracy "
        "(epoch) | final test accuracy | best | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in (a, b):
        lines.append(f"| {r['name']} | {r['median']:.2f} s | {r['first']:.2f} s | {fmt(r['t92'])}"
                     f"{'' if r['e92'] is None else ' (' + str(r['e92']) + ')'} | "
                     f"{r['final']:.4f} | {r['best']:.4f} | {r['rss']:.0f} MiB |")
    ratio = a["median"] / b["median"]
    summary = f"cnnc / Keras time per epoch: **{ratio:.2f}**"
    if a["t92"] and b["t92"]:
        summary += f"; time to 92%: **{a['t92'] / b['t92']:.2f}**"
    lines += ["", summary + ". Peak RSS: the cnnc process; Keras' Python process (TensorFlow "
              "loaded, the data as float32 arrays)."]
    lines += ["", "Per epoch (cnnc): loss, accuracy, validation and test accuracy, seconds:", "",
              "| epoch | loss | accuracy | val accuracy | test accuracy | seconds |",
              "|---|---|---|---|---|---|"]
    for e in ours:
        lines.append(f"| {int(e['epoch'])} | {e['loss']:.4f} | {e['accuracy']:.4f} | "
                     f"{e['val_accuracy']:.4f} | {e['test_accuracy']:.4f} | {e['seconds']:.2f} |")
    png = os.path.splitext(args.out)[0] + ".png"
    chart(ours, theirs, png)
    lines += ["", f"![cnnc and Keras: loss and test accuracy against training time]"
              f"({os.path.basename(png)})", "",
              "cnnc's own curves (`cnnc train --curves`): "
              "![loss and accuracy curves](training_fashion_mnist.svg)", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
