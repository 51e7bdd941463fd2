#!/usr/bin/env python3
"""keras.applications models beyond the lecture's 19 (MobileNetV3, EfficientNetV2, ConvNeXt, ...):
each built with weights=None, its weights randomised as the fixtures' are (keras_export.py's
randomise_weights: BatchNorm and LayerNorm statistics, biases, LayerScale), logits (no softmax)
for two images in [0, 255), then `cnnc compare` against them. Prints one line per model.

    python3 tools/keras_apps_check.py [--models ConvNeXtTiny,MobileNetV3Small] [--out DIR]

Needs TensorFlow and Keras (tools/setup_keras.sh) and the built cnnc; not run by CI.
"""
import argparse, json, os, subprocess, sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

DEFAULT = "MobileNetV3Small,MobileNetV3Large,EfficientNetV2B0,ConvNeXtTiny"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT)
    ap.add_argument("--out", default="/tmp/keras_apps")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    a = ap.parse_args()
    import keras
    import numpy as np
    from keras_export import randomise_weights

    os.makedirs(a.out, exist_ok=True)
    failed = 0
    for name in a.models.split(","):
        # MobileNetV3 without weights defaults to any input size; cnnc compiles a fixed one.
        kw = {"input_shape": (224, 224, 3)} if name.startswith("MobileNetV3") else {}
        model = getattr(keras.applications, name)(weights=None, classifier_activation=None, **kw)
        randomise_weights(model, np.random.default_rng(1), bias_std=0.1)
        base = os.path.join(a.out, name)
        model.save(base + ".keras")
        x = np.random.default_rng(0).uniform(0, 255, [2] + list(model.input_shape[1:])).astype("float32")
        np.save(base + ".input.npy", x)
        np.save(base + ".output.npy", np.asarray(model(x, training=False)))
        params = model.count_params()
        keras.backend.clear_session()
        p = subprocess.run([a.cnnc, "compare", base + ".keras", "--input", base + ".input.npy",
                            "--expect", base + ".output.npy"], capture_output=True, text=True)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if not lines:
            failed += 1
            print(f"{name}: {(p.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
            continue
        r = json.loads(lines[-1])
        ok = r["pass"] and r["params"] == params
        failed += not ok
        print(f"{name}: params {r['params']:,} (Keras {params:,}), max rel. error {r['max_rel_error']:.2e}, "
              f"compile {r['compile_seconds']:.1f} s -> {'PASS' if ok else 'FAIL'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
