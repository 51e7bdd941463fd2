#!/usr/bin/env python3
"""Writes tests/fixtures/fashion/fashion_trained.keras and .eval.json: a small 2-conv net trained
by Keras for one epoch on Fashion-MNIST (Debian's dataset-fashion-mnist), and Keras' own
evaluate() of it on the 10,000 test images (pixels / 255): loss, accuracy, and the number of
correct predictions. `cnnc evaluate` on the same file and data must agree (tests/tools/cli_test.sh
evaluate_keras). Needs TensorFlow and Keras (tools/setup_keras.sh); not run by CI.

    python3 tools/fashion_fixture.py [--out tests/fixtures/fashion]
"""
import argparse, gzip, json, os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name, offset):
    with gzip.open(os.path.join(DATA, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "fashion"))
    a = ap.parse_args()
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y_train = idx("train-labels-idx1-ubyte.gz", 8).astype("int64")
    x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y_test = idx("t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPooling2D(name="pool1"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(32, activation="relu", name="fc"),
        layers.Dense(10, activation="softmax", name="classifier"),
    ], name="fashion_trained")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    loss, acc = model.evaluate(x_test, y_test, batch_size=100, verbose=0)
    probs = model.predict(x_test, batch_size=100, verbose=0)
    correct = int((probs.argmax(1) == y_test).sum())
    # The smallest gap between the top two probabilities: an argmax that float rounding can flip.
    top2 = np.sort(probs, 1)[:, -2:]
    ties = int((top2[:, 1] - top2[:, 0] < 1e-5).sum())
    base = os.path.join(a.out, "fashion_trained")
    plain = keras.models.clone_model(model)  # uncompiled: the file holds no optimizer state
    plain.set_weights(model.get_weights())
    plain.save(base + ".keras")
    with open(base + ".eval.json", "w") as f:
        json.dump({"loss": float(loss), "accuracy": float(acc), "correct": correct, "images": len(y_test),
                   "near_ties": ties, "keras": keras.__version__}, f, indent=1)
    print(f"fashion_trained: loss {loss:.6f}, accuracy {acc:.4f} ({correct} of {len(y_test)}), "
          f"{ties} near-ties, {os.path.getsize(base + '.keras')} bytes")


if __name__ == "__main__":
    main()
