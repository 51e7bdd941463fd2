#!/usr/bin/env python3
"""Reference data from real Keras (weights=None, nothing downloaded) for cnnc's Keras importer.

Needs TensorFlow + Keras 3 + h5py: tools/setup_keras.sh (optional; not part of setup.sh or CI).

  tools/keras_export.py zoo --out /work/keras_zoo [--models ResNet50,MobileNetV2] [--batch 1]
      Every model of keras.applications (the 19 of tools/reference/keras_applications.csv first,
      then MobileNetV3, EfficientNetB1-B7, EfficientNetV2, ConvNeXt), built with weights=None at
      its default input size, then the variants of VARIANT_MODELS (other input sizes and class
      counts); BatchNormalization statistics, biases, LayerNormalization and LayerScale weights
      randomised from the seed. --models LeNet5,CIFAR10CNN exports the lecture's two small
      networks (the Keras twins of models/lenet5.cnn and models/cifar10_cnn.cnn). Per model:
      NAME.keras, NAME.input.npy, NAME.output.npy, NAME.logits.npy (the pre-softmax values, when
      the model ends in a softmax), NAME.json.

  tools/keras_export.py float64 --out /work/keras_zoo --models ResNet50,EfficientNetV2M
      The exported models again, computed by Keras in float64 (NAME.logits64.npy): the exact
      answer, and how far Keras' own float32 results (the exported one, and the image at batch 2)
      are from it (NAME.json).

  tools/keras_export.py fixtures --out tests/fixtures/keras
      Tiny functional models covering every layer class and option those models use. Per fixture:
      NAME.keras, NAME.h5 (legacy HDF5), NAME.json (model.to_json()) + NAME.weights.h5,
      NAME.input.npy, NAME.output.npy (NAME.output0.npy, NAME.output1.npy, ... for several outputs).

Every export is reloaded from each saved format and re-run; a mismatch is reported as an error.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels: reproducible numbers
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse
import collections
import csv
import json
import sys
import time
import traceback
import zlib

import numpy as np

import keras
import tensorflow as tf
from keras import layers

try:  # the InceptionResNetV2 residual scaling layer: inputs[0] + inputs[1] * scale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
except ImportError:  # pragma: no cover - other Keras 3 layouts
    CustomScaleLayer = None
try:  # ConvNeXt's per-channel residual scaling
    from keras.src.applications.convnext import LayerScale
except ImportError:  # pragma: no cover - other Keras 3 layouts
    LayerScale = None

CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference", "keras_applications.csv")
# Models whose preprocessing is inside the network (EfficientNet's and ConvNeXt's Rescaling +
# Normalization, MobileNetV3's Rescaling): they get inputs in [0, 255) like raw images; every
# other model gets inputs in [-1, 1).
RAW_PIXEL_MODELS = ("EfficientNet", "ConvNeXt", "MobileNetV3")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_VAR = [0.229**2, 0.224**2, 0.225**2]


def name_seed(seed, name):
    return (seed * 1000003 + zlib.crc32(name.encode())) % (2**32)


def randomise_weights(model, rng, bias_std=0.1, normalization=None):
    """BatchNormalization: moving_mean ~ N(0, 0.1), moving_variance ~ U(0.5, 1.5),
    gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1) (those present; LayerNormalization's too, and
    LayerScale's gamma ~ U(0.5, 1.5)). Biases of Conv2D, DepthwiseConv2D,
    SeparableConv2D and Dense ~ N(0, bias_std) (Keras initialises them to 0, which would hide a
    bias that is dropped or misplaced). Normalization layers without a mean in their config get
    `normalization` = (mean, variance) as their mean/variance weights, if given."""
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0.0, 0.1, c).astype("float32"))
            layer.moving_mean.assign(rng.normal(0.0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D,
                                layers.Dense)):
            bias = getattr(layer, "bias", None)
            if bias is not None and bias_std > 0:
                bias.assign(rng.normal(0.0, bias_std, tuple(bias.shape)).astype("float32"))
        elif isinstance(layer, layers.LayerNormalization):
            for w in layer.weights:  # gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1), those present
                c = w.shape[0]
                w.assign((rng.uniform(0.5, 1.5, c) if "gamma" in w.path else rng.normal(0, 0.1, c)).astype("float32"))
        elif type(layer).__name__ == "LayerScale":  # ConvNeXt's: 1e-6 at init would hide its branch
            for w in layer.weights:
                w.assign(rng.uniform(0.5, 1.5, tuple(w.shape)).astype("float32"))
        elif isinstance(layer, layers.Normalization) and normalization is not None:
            if getattr(layer, "input_mean", None) is None:
                mean, var = normalization
                layer.adapt_mean.assign(np.asarray(mean, "float32"))
                layer.adapt_variance.assign(np.asarray(var, "float32"))
                layer.finalize_state()


def _all_layers(model):
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out.extend(_all_layers(layer))
    return out


def run_model(model, x):
    y = model(x, training=False)
    ys = y if isinstance(y, (list, tuple)) else [y]
    return [np.asarray(t, dtype="float32") for t in ys]


def shape_list(s):
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return [shape_list(t) for t in s]
    return [None if d is None else int(d) for d in s]


def max_rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(a)))))


# ----------------------------------------------------------------------------------------- zoo

def read_zoo_csv():
    with open(CSV) as f:
        return [(r["model"], int(r["input_size"])) for r in csv.DictReader(f)]


# The two small networks of the lecture, as Keras users write them; the same networks as
# models/lenet5.cnn (61,706 params) and models/cifar10_cnn.cnn (1,250,858 params).
def lenet5(weights=None):
    x = inp = keras.Input((32, 32, 1), name="image")
    x = layers.Conv2D(6, 5, activation="tanh", name="c1")(x)
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = layers.AveragePooling2D(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation="tanh", name="c5")(x)
    x = layers.Dense(84, activation="tanh", name="f6")(x)
    x = layers.Dense(10, activation="softmax", name="output")(x)
    return keras.Model(inp, x, name="lenet5")


def cifar10_cnn(weights=None):
    x = inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Dropout(0.25, name="drop1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv4")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Dropout(0.25, name="drop2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, name="drop3")(x)
    x = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="cifar10_cnn")


# Exported by `zoo --models LeNet5,CIFAR10CNN` (not part of the default).
EXTRA_MODELS = {"LeNet5": lenet5, "CIFAR10CNN": cifar10_cnn}


def application(name, **kw):
    return lambda weights=None: getattr(keras.applications, name)(weights=weights, **kw)


# Applications at input sizes and class counts other than their default (the sizes users
# fine-tune at): NAME_SIZE_cCLASSES. Part of the default export, after the applications.
VARIANT_MODELS = {
    "ResNet50_160_c10": application("ResNet50", input_shape=(160, 160, 3), classes=10),
    "MobileNetV2_128_c5": application("MobileNetV2", input_shape=(128, 128, 3), classes=5, alpha=0.5),
    "DenseNet121_96_c2": application("DenseNet121", input_shape=(96, 96, 3), classes=2),
    "EfficientNetB0_260_c100": application("EfficientNetB0", input_shape=(260, 260, 3), classes=100),
    "EfficientNetV2B0_192_c10": application("EfficientNetV2B0", input_shape=(192, 192, 3), classes=10),
    "ConvNeXtTiny_160_c37": application("ConvNeXtTiny", input_shape=(160, 160, 3), classes=37),
    "MobileNetV3Small_96_c10": application("MobileNetV3Small", input_shape=(96, 96, 3), classes=10,
                                           minimalistic=True),
    "InceptionV3_139_c7": application("InceptionV3", input_shape=(139, 139, 3), classes=7),
    "Xception_96_c3": application("Xception", input_shape=(96, 96, 3), classes=3),
    "VGG16_64_c10": application("VGG16", input_shape=(64, 64, 3), classes=10),
}
# MobileNetV3 without weights accepts any input size (None x None); cnnc compiles a fixed one:
# its default export is at 224x224, the size its ImageNet weights were trained at.
for _v3 in ("MobileNetV3Small", "MobileNetV3Large"):
    EXTRA_MODELS[_v3] = application(_v3, input_shape=(224, 224, 3))


def keras_applications():
    """Every model keras.applications of this Keras offers, table order first."""
    table = [n for n, _ in read_zoo_csv()]
    others = sorted(n for n in dir(keras.applications)
                    if n[:1].isupper() and n not in table and callable(getattr(keras.applications, n)))
    return table + others


def export_zoo_model(name, out, batch, seed, check):
    ctor = EXTRA_MODELS.get(name) or VARIANT_MODELS.get(name) or getattr(keras.applications, name)
    keras.utils.set_random_seed(name_seed(seed, name))
    t0 = time.time()
    model = ctor(weights=None)
    t_build = time.time() - t0
    rng = np.random.default_rng(name_seed(seed, name) + 1)
    randomise_weights(model, rng, bias_std=0.02, normalization=(IMAGENET_MEAN, IMAGENET_VAR))
    in_shape = shape_list(model.input_shape)
    xshape = [batch] + in_shape[1:]
    if name.startswith(RAW_PIXEL_MODELS):
        lo, hi = 0.0, 255.0
    else:
        lo, hi = -1.0, 1.0
    x = rng.uniform(lo, hi, xshape).astype("float32")
    t0 = time.time()
    (y,) = run_model(model, x)
    t_run = time.time() - t0
    logits = zoo_logits(model, x)
    t0 = time.time()
    path = os.path.join(out, name + ".keras")
    model.save(path)
    t_save = time.time() - t0
    np.save(os.path.join(out, name + ".input.npy"), x)
    np.save(os.path.join(out, name + ".output.npy"), y)
    if logits is not None:
        np.save(os.path.join(out, name + ".logits.npy"), logits)
    classes = collections.Counter(type(l).__name__ for l in model.layers)
    info = {
        "model": name,
        "application": name.split("_")[0] if name in VARIANT_MODELS else name,
        "params": int(model.count_params()),
        "layers": len(model.layers),
        "input_shape": in_shape,
        "output_shape": shape_list(model.output_shape),
        "keras_version": keras.__version__,
        "tf_version": tf.__version__,
        "seconds_to_build": round(t_build, 3),
        "seconds_to_run": round(t_run, 3),
        "seconds_to_save": round(t_save, 3),
        "seed": seed,
        "batch": batch,
        "input_range": [lo, hi],
        "keras_file_bytes": os.path.getsize(path),
        "output_stats": {"min": float(y.min()), "max": float(y.max()), "mean": float(y.mean()),
                         "argmax": [int(i) for i in y.reshape(batch, -1).argmax(axis=1)],
                         "finite": bool(np.isfinite(y).all())},
        "logits_file": None if logits is None else name + ".logits.npy",
        "logits_stats": None if logits is None else {
            "min": float(logits.min()), "max": float(logits.max()), "std": float(logits.std())},
        "layer_classes": dict(sorted(classes.items())),
        "weights_randomised": "BatchNormalization gamma~U(0.5,1.5) beta~N(0,0.1) "
                              "moving_mean~N(0,0.1) moving_variance~U(0.5,1.5); biases~N(0,0.02); "
                              "Normalization mean/variance = ImageNet RGB statistics",
    }
    if check:
        t0 = time.time()
        m2 = keras.models.load_model(path, compile=False)
        (y2,) = run_model(m2, x)
        info["reload_max_abs_diff"] = float(np.max(np.abs(y - y2)))
        info["seconds_to_reload"] = round(time.time() - t0, 3)
        del m2
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    del model
    keras.backend.clear_session()
    return info


def float64_twin(model):
    """The same model computing in float64: its config with every dtype float64, its weights."""
    def to_f64(o):
        if isinstance(o, dict):
            return {k: ("float64" if k == "dtype" else to_f64(v)) for k, v in o.items()}
        if isinstance(o, list):
            return [to_f64(v) for v in o]
        return o
    keras.config.set_dtype_policy("float64")
    try:
        twin = model.__class__.from_config(to_f64(model.get_config()))
    finally:
        keras.config.set_dtype_policy("float32")
    twin.set_weights([np.asarray(w, dtype="float64") for w in model.get_weights()])
    for layer in _all_layers(twin):  # a Normalization computes from its adapted weights here
        if isinstance(layer, layers.Normalization) and getattr(layer, "input_mean", None) is None:
            layer.finalize_state()
    return twin


def cmd_float64(args):
    """Keras' logits (or output) computed in float64 on the same weights and input, into
    NAME.logits64.npy (NAME.output64.npy), and how far Keras' own float32 result is from them
    into NAME.json: the exact answer both float32 implementations are measured against."""
    for name in args.models.split(","):
        base = os.path.join(args.out, name)
        model = keras.models.load_model(base + ".keras", compile=False)
        x = np.load(base + ".input.npy")
        twin = float64_twin(model)
        with open(base + ".json") as f:
            info = json.load(f)
        logits = os.path.exists(base + ".logits.npy")
        ours = np.load(base + (".logits.npy" if logits else ".output.npy")).astype("float64")
        exact = zoo_logits(twin, x.astype("float64"), dtype="float64") if logits else \
            np.asarray(twin(x.astype("float64"), training=False), dtype="float64")
        np.save(base + (".logits64.npy" if logits else ".output64.npy"), exact.astype("float32"))
        info["keras_float32_vs_float64"] = max_rel_err(ours, exact)
        # Keras' float32 again with the image twice in a batch: other kernel blockings, so other
        # rounding. Where a model amplifies rounding, Keras' own float32 results differ this much.
        x2 = np.concatenate([x, x])
        twice = zoo_logits(model, x2) if logits else np.asarray(model(x2, training=False))
        info["keras_float32_batch2_vs_float64"] = max_rel_err(
            np.asarray(twice[:1], dtype="float64"), exact)
        info.pop("ulp_sensitivity", None)  # the 1-ulp noise floor this replaces
        with open(base + ".json", "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        print(f"{name}: Keras float32 is {info['keras_float32_vs_float64']:.2e} (relative) from "
              f"float64, {info['keras_float32_batch2_vs_float64']:.2e} at batch 2", flush=True)
        del model, twin
        keras.backend.clear_session()
    return 0


def zoo_logits(model, x, dtype="float32"):
    """The pre-softmax values when the model ends in a softmax (Dense(activation='softmax') or
    Activation('softmax')): with random weights the probabilities are all close to 1/1000, so
    the logits are the sharper parity check. None when the model ends otherwise. dtype: the
    model's own (float64 for float64_twin's), kept to the end."""
    last = model.layers[-1]
    if last.get_config().get("activation") != "softmax":
        return None
    feat = np.asarray(keras.Model(model.input, last.input)(x, training=False), dtype=dtype)
    if isinstance(last, layers.Dense):
        w = [np.asarray(v, dtype="float64") for v in last.get_weights()]
        logits = feat.astype("float64") @ w[0] + (w[1] if len(w) > 1 else 0.0)
    elif isinstance(last, layers.Activation):
        logits = feat
    else:
        return None
    logits = np.asarray(logits, dtype=dtype)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    y = np.asarray(model(x, training=False))
    if not np.allclose(e / e.sum(axis=-1, keepdims=True), y, rtol=1e-4, atol=1e-7):
        raise RuntimeError("softmax(logits) does not reproduce the model output")
    return logits


def cmd_zoo(args):
    os.makedirs(args.out, exist_ok=True)
    names = keras_applications() + list(VARIANT_MODELS)
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        known = names + [m for m in EXTRA_MODELS if m not in names]
        unknown = [m for m in wanted if m not in known]
        if unknown:
            print(f"keras_export: unknown model(s) {unknown}; known: {known}", file=sys.stderr)
            return 2
        names = wanted
    failed = []
    for name in names:
        try:
            info = export_zoo_model(name, args.out, args.batch, args.seed, not args.no_check)
            print(f"{name}: {info['params']} params, {info['layers']} layers, "
                  f"in {info['input_shape']} out {info['output_shape']}, "
                  f"build {info['seconds_to_build']}s run {info['seconds_to_run']}s "
                  f"save {info['seconds_to_save']}s, {info['keras_file_bytes'] / 1e6:.1f} MB"
                  + (f", reload diff {info['reload_max_abs_diff']:.3g}"
                     if "reload_max_abs_diff" in info else ""), flush=True)
        except Exception as e:  # keep going: one model's failure must not stop the others
            failed.append(name)
            print(f"keras_export: error: {name}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc()
            keras.backend.clear_session()
    if failed:
        print(f"keras_export: {len(failed)} model(s) failed: {failed}", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------ fixtures
# Each builder returns (model, input_low, input_high). Keep them tiny: a few KB per file.

FIXTURES = collections.OrderedDict()


def fixture(covers):
    def deco(fn):
        FIXTURES[fn.__name__[len("fx_"):]] = (fn, covers)
        return fn
    return deco


@fixture("Conv2D padding='same' with stride 2 on an even size (Keras pads 0 top/left, 1 "
         "bottom/right), non-square kernel 'same' with stride 1 (pads 1/2 and 0/1), "
         "activation='relu' and 'swish' in-layer, use_bias=False")
def fx_conv_same_asym():
    x = keras.Input((8, 8, 3), name="in")
    y = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv_s2")(x)
    y = layers.Conv2D(5, (4, 2), padding="same", use_bias=False, activation="swish",
                      name="conv_4x2_nobias")(y)
    return keras.Model(x, y, name="conv_same_asym"), -1, 1


@fixture("Conv2D 'same' on odd H / even W with stride 2 (H pads 1/1, W pads 0/1), "
         "non-square strides (2,1), activation='linear'")
def fx_conv_same_odd():
    x = keras.Input((7, 10, 3), name="in")
    y = layers.Conv2D(4, 3, strides=2, padding="same", name="conv_s2")(x)
    y = layers.Conv2D(3, (3, 3), strides=(2, 1), padding="same", activation="linear",
                      name="conv_s2x1")(y)
    return keras.Model(x, y, name="conv_same_odd"), -1, 1


@fixture("Conv2D padding='valid' with dilation_rate=2, 'same' with dilation 2, "
         "1x1 stride-2 'valid' (ResNet shortcut), 7x7 stride-2 'valid' that drops the last "
         "row/column; activation='tanh', 'sigmoid'")
def fx_conv_valid_dilation():
    x = keras.Input((11, 11, 3), name="in")
    a = layers.Conv2D(4, 3, dilation_rate=2, padding="valid", activation="tanh", name="dil_valid")(x)
    a = layers.Conv2D(3, 3, dilation_rate=(2, 2), padding="same", activation="sigmoid",
                      name="dil_same")(a)
    a = layers.Conv2D(2, 1, strides=2, padding="valid", name="pw_s2")(a)  # 7x7 -> 4x4
    b = layers.Conv2D(2, 7, strides=2, padding="valid", name="conv7_s2")(x)  # 11 -> 3 (drops 1)
    b = layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad_b")(b)  # 3x3 -> 4x4
    y = layers.Concatenate(name="cat")([a, b])
    return keras.Model(x, y, name="conv_valid_dilation"), -1, 1


@fixture("DepthwiseConv2D depth_multiplier=1 'same' use_bias=False, depth_multiplier=2 "
         "stride 2 'same' with bias and activation='relu', 'valid'; BatchNormalization; ReLU(6.)")
def fx_depthwise():
    x = keras.Input((8, 8, 4), name="in")
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw1")(x)
    y = layers.BatchNormalization(name="dw1_bn")(y)
    y = layers.ReLU(6.0, name="dw1_relu6")(y)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                               activation="relu", name="dw2_dm2")(y)  # 4x4x8
    y = layers.DepthwiseConv2D((3, 3), padding="valid", name="dw3_valid")(y)  # 2x2x8
    return keras.Model(x, y, name="depthwise"), -1, 1


@fixture("SeparableConv2D use_bias=False 'same' (Xception), stride 2 'same' with "
         "depth_multiplier=2, bias and activation='relu' (NASNet), 'valid'")
def fx_separable():
    x = keras.Input((8, 8, 3), name="in")
    y = layers.SeparableConv2D(5, 3, padding="same", use_bias=False, name="sep1")(x)
    y = layers.BatchNormalization(name="sep1_bn")(y)
    y = layers.Activation("relu", name="sep1_act")(y)
    y = layers.SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2,
                               activation="relu", name="sep2_s2_dm2")(y)  # 4x4x4
    y = layers.SeparableConv2D(3, (3, 3), padding="valid", name="sep3_valid")(y)  # 2x2x3
    return keras.Model(x, y, name="separable"), -1, 1


@fixture("BatchNormalization default (epsilon 1e-3), center=False, scale=False, "
         "center=False+scale=False with epsilon=1.001e-5 (ResNet/DenseNet epsilon), axis=3")
def fx_batchnorm():
    x = keras.Input((4, 4, 6), name="in")
    y = layers.BatchNormalization(name="bn_default")(x)
    y = layers.BatchNormalization(center=False, name="bn_no_center")(y)
    y = layers.BatchNormalization(scale=False, name="bn_no_scale")(y)
    y = layers.BatchNormalization(axis=3, center=False, scale=False, epsilon=1.001e-5,
                                  name="bn_none_eps")(y)
    return keras.Model(x, y, name="batchnorm"), -1, 1


ACTIVATIONS = ["relu", "relu6", "swish", "silu", "sigmoid", "softmax", "tanh", "hard_sigmoid",
               "linear"]


@fixture("Activation layer: " + ", ".join(ACTIVATIONS) + " (softmax over the channel axis; "
         "hard_sigmoid is Keras 3's relu6(x+3)/6, not Keras 2's 0.2x+0.5); inputs in [-5, 5)")
def fx_activations():
    return activation_layers_model("activations", ACTIVATIONS), -5, 5


def activation_layers_model(name, activations):
    """An Activation layer per name, each on the same (2, 3, 4) input, concatenated."""
    x = keras.Input((2, 3, 4), name="in")
    ys = [layers.Activation(a, name="act_" + a)(x) for a in activations]
    y = layers.Concatenate(name="cat")(ys)
    return keras.Model(x, y, name=name)


@fixture("ReLU layer: default, max_value=6, negative_slope=0.1, threshold=0.5, "
         "max_value=4 + negative_slope=0.2 + threshold=1 (Keras 3 rejects a negative threshold); "
         "inputs in [-8, 8)")
def fx_relu_variants():
    x = keras.Input((2, 3, 4), name="in")
    ys = [layers.ReLU(name="relu")(x),
          layers.ReLU(max_value=6.0, name="relu_max6")(x),
          layers.ReLU(negative_slope=0.1, name="relu_leaky")(x),
          layers.ReLU(threshold=0.5, name="relu_thr")(x),
          layers.ReLU(max_value=4.0, negative_slope=0.2, threshold=1.0, name="relu_all")(x)]
    y = layers.Concatenate(name="cat")(ys)
    return keras.Model(x, y, name="relu_variants"), -8, 8


# Keras 3's other built-in activations (keras.activations), by the names a config may carry.
ACTIVATIONS_KERAS3 = ["gelu", "hard_silu", "hard_swish", "mish", "elu", "selu", "softplus",
                      "softsign", "exponential", "log_softmax", "log_sigmoid"]


@fixture("Activation layer, Keras 3's other activations: " + ", ".join(ACTIVATIONS_KERAS3)
         + " (gelu is the exact erf form: the name cannot carry approximate=True; hard_swish is "
         "written as \"hard_silu\", x * relu6(x+3)/6; elu with alpha 1; selu with its fixed "
         "alpha and scale; log_softmax over the channel axis); inputs in [-5, 5)")
def fx_activations_keras3():
    return activation_layers_model("activations_keras3", ACTIVATIONS_KERAS3), -5, 5


@fixture("Keras 3 activations as layer epilogues (activation= in the layer): Conv2D 3x3 'same' "
         "gelu -> Conv2D 3x3 'same' mish -> DepthwiseConv2D 3x3 'same' hard_silu -> Conv2D 1x1 "
         "elu -> selu -> softplus -> softsign -> GlobalAveragePooling2D, then two outputs of the "
         "pooled vector: Dense exponential and Dense log_softmax")
def fx_activation_epilogues():
    x = keras.Input((6, 6, 3), name="in")
    y = layers.Conv2D(8, 3, padding="same", activation="gelu", name="conv_gelu")(x)
    y = layers.Conv2D(8, 3, padding="same", activation="mish", name="conv_mish")(y)
    y = layers.DepthwiseConv2D(3, padding="same", activation="hard_silu", name="dw_hard_silu")(y)
    y = layers.Conv2D(8, 1, activation="elu", name="pw_elu")(y)
    y = layers.Conv2D(8, 1, activation="selu", name="pw_selu")(y)
    y = layers.Conv2D(8, 1, activation="softplus", name="pw_softplus")(y)
    y = layers.Conv2D(8, 1, activation="softsign", name="pw_softsign")(y)
    p = layers.GlobalAveragePooling2D(name="gap")(y)  # softsign: every feature in (-1, 1)
    # Glorot-uniform 8->5 weights (|w| < 0.68) and biases ~ N(0, 0.1) on features in (-1, 1):
    # the exponential's argument stays within about +-6, far from float32 overflow.
    e = layers.Dense(5, activation="exponential", name="fc_exp")(p)
    s = layers.Dense(4, activation="log_softmax", name="fc_log_softmax")(p)
    return keras.Model(x, [e, s], name="activation_epilogues"), -1, 1


@fixture("Squeeze-excite as in EfficientNet: GlobalAveragePooling2D (keepdims=False) -> "
         "Reshape((1,1,C)) -> Conv2D 1x1 swish -> Conv2D 1x1 sigmoid -> Multiply with "
         "broadcasting (H,W,C)*(1,1,C)")
def fx_se_reshape():
    x = keras.Input((5, 5, 8), name="in")
    s = layers.GlobalAveragePooling2D(name="se_squeeze")(x)
    s = layers.Reshape((1, 1, 8), name="se_reshape")(s)
    s = layers.Conv2D(2, 1, padding="same", activation="swish", name="se_reduce")(s)
    s = layers.Conv2D(8, 1, padding="same", activation="sigmoid", name="se_expand")(s)
    y = layers.Multiply(name="se_excite")([x, s])
    return keras.Model(x, y, name="se_reshape"), -1, 1


@fixture("Squeeze-excite with GlobalAveragePooling2D(keepdims=True) -> Dense on a rank-4 "
         "(1,1,C) tensor (relu, sigmoid) -> Multiply with the broadcast operand first")
def fx_se_keepdims_dense():
    x = keras.Input((5, 5, 8), name="in")
    s = layers.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(x)
    s = layers.Dense(3, activation="relu", name="fc1")(s)
    s = layers.Dense(8, activation="sigmoid", name="fc2")(s)
    y = layers.Multiply(name="mul")([s, x])
    return keras.Model(x, y, name="se_keepdims_dense"), -1, 1


@fixture("Add of three tensors incl. the model input, Concatenate axis=-1 and axis=3 "
         "(DenseNet), one input feeding several branches")
def fx_add_concat():
    x = keras.Input((5, 5, 4), name="in")
    a = layers.Conv2D(4, 3, padding="same", name="branch_a")(x)
    b = layers.Conv2D(4, 1, name="branch_b")(x)
    s = layers.Add(name="add3")([a, b, x])
    c = layers.Concatenate(axis=-1, name="cat_last")([s, a])
    y = layers.Concatenate(axis=3, name="cat_axis3")([x, c])
    return keras.Model(x, y, name="add_concat"), -1, 1


@fixture("ZeroPadding2D int, ((top,bottom),(left,right)) asymmetric, (h,w) symmetric; "
         "Cropping2D ((top,bottom),(left,right)), int, (h,w)")
def fx_pad_crop():
    x = keras.Input((7, 6, 3), name="in")
    y = layers.ZeroPadding2D(1, name="pad_int")(x)  # 9x8
    y = layers.ZeroPadding2D(((0, 1), (2, 1)), name="pad_tblr")(y)  # 10x11
    y = layers.ZeroPadding2D((1, 2), name="pad_hw")(y)  # 12x15
    y = layers.Conv2D(2, 3, padding="same", name="conv")(y)  # zeros become bias/neighbours
    y = layers.Cropping2D(((1, 0), (0, 2)), name="crop_tblr")(y)  # 11x13
    y = layers.Cropping2D(1, name="crop_int")(y)  # 9x11
    y = layers.Cropping2D((2, 3), name="crop_hw")(y)  # 5x5
    return keras.Model(x, y, name="pad_crop"), -1, 1


@fixture("AveragePooling2D 3x3 stride 2 'same' on an even size (pads bottom/right only; the "
         "average excludes padding), MaxPooling2D 3x3 stride 1 'same', AveragePooling2D 3x3 "
         "stride 1 'same' (Inception), MaxPooling2D 2 (default strides = pool size)")
def fx_pool_same():
    x = keras.Input((8, 8, 3), name="in")
    y = layers.AveragePooling2D(3, strides=2, padding="same", name="avg_s2_same")(x)  # 4x4
    y = layers.MaxPooling2D(3, strides=1, padding="same", name="max_s1_same")(y)
    y = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name="avg_s1_same")(y)
    y = layers.MaxPooling2D(2, name="max_2")(y)  # 2x2
    return keras.Model(x, y, name="pool_same"), -1, 1


@fixture("MaxPooling2D 3x3 stride 2 'valid' (ResNet/Inception stem), AveragePooling2D 2 "
         "'valid' with strides=2 (DenseNet transition), MaxPooling2D 'same' stride 2 odd size")
def fx_pool_valid():
    x = keras.Input((9, 9, 3), name="in")
    a = layers.MaxPooling2D((3, 3), strides=(2, 2), name="max_s2_valid")(x)  # 4x4
    a = layers.AveragePooling2D(2, strides=2, name="avg_2")(a)  # 2x2
    b = layers.MaxPooling2D(3, strides=2, padding="same", name="max_s2_same")(x)  # 5x5
    b = layers.MaxPooling2D(3, strides=2, padding="valid", name="max_s2_valid_b")(b)  # 2x2
    y = layers.Concatenate(name="cat")([a, b])
    return keras.Model(x, y, name="pool_valid"), -1, 1


@fixture("GlobalAveragePooling2D and GlobalMaxPooling2D with keepdims False and True "
         "(keepdims=True flattened by Flatten)")
def fx_global_pool():
    x = keras.Input((4, 5, 3), name="in")
    ys = [layers.GlobalAveragePooling2D(name="gap")(x),
          layers.GlobalMaxPooling2D(name="gmp")(x),
          layers.Flatten(name="flat_gap")(layers.GlobalAveragePooling2D(keepdims=True,
                                                                        name="gap_keep")(x)),
          layers.Flatten(name="flat_gmp")(layers.GlobalMaxPooling2D(keepdims=True,
                                                                    name="gmp_keep")(x))]
    y = layers.Concatenate(name="cat")(ys)
    return keras.Model(x, y, name="global_pool"), -1, 1


@fixture("VGG-style head: Flatten (row-major H,W,C order) -> Dense relu -> Dropout -> "
         "Dense tanh use_bias=False -> Dense softmax")
def fx_dense_head():
    x = keras.Input((3, 3, 2), name="in")
    y = layers.Flatten(name="flatten")(x)
    y = layers.Dense(8, activation="relu", name="fc1")(y)
    y = layers.Dropout(0.5, name="drop")(y)
    y = layers.Dense(6, activation="tanh", use_bias=False, name="fc2")(y)
    y = layers.Dense(5, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="dense_head"), -1, 1


@fixture("MobileNet-style head: GlobalAveragePooling2D(keepdims=True) -> Dropout -> Conv2D 1x1 "
         "-> Reshape((classes,)) -> Activation softmax; Reshape with -1")
def fx_reshape_head():
    x = keras.Input((3, 3, 4), name="in")
    y = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    y = layers.Dropout(1e-3, name="dropout")(y)
    y = layers.Conv2D(6, 1, padding="same", name="conv_preds")(y)
    y = layers.Reshape((6,), name="reshape_2")(y)
    y = layers.Activation("softmax", name="predictions")(y)
    z = layers.Reshape((-1,), name="reshape_m1")(x)
    y = layers.Concatenate(name="cat")([y, z])
    return keras.Model(x, y, name="reshape_head"), -1, 1


@fixture("Rescaling scale=1/255 (EfficientNet), Normalization axis=-1 with mean/variance as "
         "weights (no config mean; as EfficientNet), Rescaling scale+offset (1/127.5, -1), "
         "Rescaling per-channel list scale, Normalization with mean/variance in its config, "
         "Normalization invert=True; inputs in [0, 255)")
def fx_rescale_normalize():
    x = keras.Input((3, 4, 3), name="in")
    a = layers.Rescaling(1.0 / 255.0, name="rescale_255")(x)
    a = layers.Normalization(axis=-1, name="norm_weights")(a)  # weights set in post_build
    b = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale_offset")(x)
    b = layers.Rescaling([0.5, 2.0, 1.5], name="rescale_list")(b)
    b = layers.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5],
                             name="norm_config")(b)
    c = layers.Normalization(axis=3, mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0],
                             invert=True, name="norm_invert")(b)
    y = layers.Concatenate(name="cat")([a, b, c])
    return keras.Model(x, y, name="rescale_normalize"), 0, 255


@fixture("InceptionResNetV2 residual scaling layer CustomScaleLayer(scale): "
         "inputs[0] + inputs[1] * scale (scale 0.17 and 1.0)")
def fx_scale_layer():
    if CustomScaleLayer is None:
        raise RuntimeError("CustomScaleLayer not found in this Keras")
    x = keras.Input((4, 4, 3), name="in")
    r = layers.Conv2D(3, 1, name="residual")(x)
    y = CustomScaleLayer(0.17, name="block35_1")([x, r])
    y = layers.Activation("relu", name="block35_1_ac")(y)
    r2 = layers.Conv2D(3, 3, padding="same", name="residual2")(y)
    y = CustomScaleLayer(1.0, name="block8_10")([y, r2])
    return keras.Model(x, y, name="scale_layer"), -1, 1


@fixture("A model with two outputs (a feature map and a softmax vector), one input feeding "
         "two branches")
def fx_two_outputs():
    x = keras.Input((6, 6, 3), name="in")
    f = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="features")(x)
    p = layers.GlobalAveragePooling2D(name="gap")(f)
    p = layers.Dense(3, activation="softmax", name="probs")(p)
    g = layers.Conv2D(2, 1, name="side")(x)
    return keras.Model(x, [p, g], name="two_outputs"), -1, 1


@fixture("Mini ResNet: ZeroPadding2D 3 -> Conv2D 7x7/2 valid -> BN eps 1.001e-5 -> relu -> "
         "ZeroPadding2D 1 -> MaxPooling2D 3/2 -> bottleneck with conv shortcut -> Add -> "
         "Activation relu -> GlobalAveragePooling2D -> Dense softmax")
def fx_mini_resnet():
    x = keras.Input((16, 16, 3), name="in")
    y = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    y = layers.Conv2D(4, 7, strides=2, name="conv1_conv")(y)
    y = layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(y)
    y = layers.Activation("relu", name="conv1_relu")(y)
    y = layers.ZeroPadding2D(1, name="pool1_pad")(y)
    y = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(y)  # 4x4x4
    s = layers.Conv2D(8, 1, strides=2, name="b_0_conv")(y)
    s = layers.BatchNormalization(epsilon=1.001e-5, name="b_0_bn")(s)
    r = layers.Conv2D(2, 1, strides=2, name="b_1_conv")(y)
    r = layers.BatchNormalization(epsilon=1.001e-5, name="b_1_bn")(r)
    r = layers.Activation("relu", name="b_1_relu")(r)
    r = layers.Conv2D(2, 3, padding="same", name="b_2_conv")(r)
    r = layers.BatchNormalization(epsilon=1.001e-5, name="b_2_bn")(r)
    r = layers.Activation("relu", name="b_2_relu")(r)
    r = layers.Conv2D(8, 1, name="b_3_conv")(r)
    r = layers.BatchNormalization(epsilon=1.001e-5, name="b_3_bn")(r)
    y = layers.Add(name="b_add")([s, r])
    y = layers.Activation("relu", name="b_out")(y)
    y = layers.GlobalAveragePooling2D(name="avg_pool")(y)
    y = layers.Dense(5, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="mini_resnet"), -1, 1


@fixture("Mini EfficientNet: Rescaling, Normalization (weights), ZeroPadding2D ((0,1),(0,1)) "
         "+ Conv2D 3x3/2 valid, BN, swish, DepthwiseConv2D, SE block, Dropout, Add, "
         "top Conv2D, GAP, Dense softmax; inputs in [0, 255)")
def fx_mini_efficientnet():
    x = keras.Input((8, 8, 3), name="in")
    y = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    y = layers.Normalization(axis=3, name="normalization")(y)
    y = layers.ZeroPadding2D(((0, 1), (0, 1)), name="stem_conv_pad")(y)
    y = layers.Conv2D(4, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(y)
    y = layers.BatchNormalization(axis=3, name="stem_bn")(y)
    y = layers.Activation("swish", name="stem_activation")(y)  # 4x4x4
    i = y
    y = layers.Conv2D(8, 1, padding="same", use_bias=False, name="b_expand_conv")(y)
    y = layers.BatchNormalization(axis=3, name="b_expand_bn")(y)
    y = layers.Activation("swish", name="b_expand_activation")(y)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="b_dwconv")(y)
    y = layers.BatchNormalization(axis=3, name="b_bn")(y)
    y = layers.Activation("swish", name="b_activation")(y)
    s = layers.GlobalAveragePooling2D(name="b_se_squeeze")(y)
    s = layers.Reshape((1, 1, 8), name="b_se_reshape")(s)
    s = layers.Conv2D(2, 1, padding="same", activation="swish", name="b_se_reduce")(s)
    s = layers.Conv2D(8, 1, padding="same", activation="sigmoid", name="b_se_expand")(s)
    y = layers.Multiply(name="b_se_excite")([y, s])
    y = layers.Conv2D(4, 1, padding="same", use_bias=False, name="b_project_conv")(y)
    y = layers.BatchNormalization(axis=3, name="b_project_bn")(y)
    y = layers.Dropout(0.2, noise_shape=(None, 1, 1, 1), name="b_drop")(y)
    y = layers.Add(name="b_add")([y, i])
    y = layers.Conv2D(8, 1, padding="same", use_bias=False, name="top_conv")(y)
    y = layers.BatchNormalization(axis=3, name="top_bn")(y)
    y = layers.Activation("swish", name="top_activation")(y)
    y = layers.GlobalAveragePooling2D(name="avg_pool")(y)
    y = layers.Dropout(0.2, name="top_dropout")(y)
    y = layers.Dense(5, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="mini_efficientnet"), 0, 255


@fixture("Mini NASNet reduction cell: Activation relu -> ZeroPadding2D ((0,1),(0,1)) -> "
         "Cropping2D ((1,0),(1,0)) -> AveragePooling2D 1x1/2 'valid' path, separable "
         "5x5/2 and 3x3/2 with ZeroPadding2D + 'valid', MaxPooling2D 3x3/2 'valid', "
         "AveragePooling2D 3x3/1 'same', Add, Concatenate")
def fx_mini_nasnet():
    x = keras.Input((8, 8, 4), name="in")
    h = layers.Activation("relu", name="relu_p")(x)
    p1 = layers.AveragePooling2D(1, strides=2, padding="valid", name="path1_pool")(h)
    p1 = layers.Conv2D(2, 1, padding="same", use_bias=False, name="path1_conv")(p1)
    p2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name="path2_pad")(h)
    p2 = layers.Cropping2D(((1, 0), (1, 0)), name="path2_crop")(p2)
    p2 = layers.AveragePooling2D(1, strides=2, padding="valid", name="path2_pool")(p2)
    p2 = layers.Conv2D(2, 1, padding="same", use_bias=False, name="path2_conv")(p2)
    p = layers.Concatenate(axis=-1, name="path_cat")([p1, p2])
    p = layers.BatchNormalization(momentum=0.9997, epsilon=1e-3, name="path_bn")(p)  # 4x4x4
    s = layers.ZeroPadding2D(((1, 2), (1, 2)), name="sep5_pad")(h)
    s = layers.SeparableConv2D(4, 5, strides=2, padding="valid", use_bias=False,
                               name="sep5_1")(s)
    s = layers.BatchNormalization(name="sep5_bn")(s)
    s = layers.Activation("relu", name="sep5_act")(s)
    s = layers.SeparableConv2D(4, 5, padding="same", use_bias=False, name="sep5_2")(s)
    m = layers.ZeroPadding2D(((0, 1), (0, 1)), name="max_pad")(h)
    m = layers.MaxPooling2D(3, strides=2, padding="valid", name="max_pool")(m)  # 4x4x4
    t = layers.ZeroPadding2D(((0, 1), (0, 1)), name="sep3_pad")(h)
    t = layers.SeparableConv2D(4, 3, strides=2, padding="valid", use_bias=False,
                               name="sep3_1")(t)
    a1 = layers.Add(name="add1")([s, m])
    a2 = layers.Add(name="add2")([t, p])
    a3 = layers.AveragePooling2D(3, strides=1, padding="same", name="avg_same")(a1)
    a3 = layers.Add(name="add3")([a3, p])
    y = layers.Concatenate(name="cell_out")([p, a1, a2, a3])
    return keras.Model(x, y, name="mini_nasnet"), -1, 1


@fixture("Mini Inception/DenseNet: branches of Conv2D(use_bias=False)+BN(scale=False)+relu "
         "concatenated, AveragePooling2D 3x3/1 'same' branch, DenseNet BN-relu-conv + "
         "Concatenate + transition AveragePooling2D 2/2")
def fx_mini_inception_densenet():
    x = keras.Input((6, 6, 3), name="in")

    def conv_bn(t, f, k, name):
        t = layers.Conv2D(f, k, padding="same", use_bias=False, name=name + "_conv")(t)
        t = layers.BatchNormalization(axis=3, scale=False, name=name + "_bn")(t)
        return layers.Activation("relu", name=name)(t)

    b1 = conv_bn(x, 2, 1, "b1x1")
    b3 = conv_bn(conv_bn(x, 2, 1, "b3_red"), 3, (1, 3), "b3_1x3")
    b3 = conv_bn(b3, 3, (3, 1), "b3_3x1")
    bp = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name="bpool")(x)
    bp = conv_bn(bp, 2, 1, "bpool_proj")
    y = layers.Concatenate(axis=3, name="mixed0")([b1, b3, bp])  # 6x6x7
    d = layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="d_0_bn")(y)
    d = layers.Activation("relu", name="d_0_relu")(d)
    d = layers.Conv2D(4, 1, use_bias=False, name="d_1_conv")(d)
    d = layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="d_1_bn")(d)
    d = layers.Activation("relu", name="d_1_relu")(d)
    d = layers.Conv2D(2, 3, padding="same", use_bias=False, name="d_2_conv")(d)
    y = layers.Concatenate(axis=3, name="d_concat")([y, d])  # 6x6x9
    y = layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="pool_bn")(y)
    y = layers.Activation("relu", name="pool_relu")(y)
    y = layers.Conv2D(4, 1, use_bias=False, name="pool_conv")(y)
    y = layers.AveragePooling2D(2, strides=2, name="pool_pool")(y)  # 3x3x4
    return keras.Model(x, y, name="mini_inception_densenet"), -1, 1


@fixture("The lecture's augmentation pattern: a Sequential of RandomFlip, RandomRotation, "
         "RandomZoom, RandomTranslation, RandomContrast, RandomBrightness used as the first "
         "layer of a Sequential model (a nested model), then Rescaling, and GaussianNoise, "
         "SpatialDropout2D, GaussianDropout: all the identity at inference")
def fx_nested_augment():
    augment = keras.Sequential([
        layers.RandomFlip("horizontal", name="flip"),
        layers.RandomRotation(0.1, name="rotate"),
        layers.RandomZoom(0.1, name="zoom"),
        layers.RandomTranslation(0.1, 0.1, name="translate"),
        layers.RandomContrast(0.2, name="contrast"),
        layers.RandomBrightness(0.2, value_range=(0, 255), name="brightness"),
    ], name="augmentation")
    model = keras.Sequential([
        keras.Input((12, 12, 3)),
        augment,
        layers.Rescaling(1 / 255.0, name="rescale"),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.MaxPooling2D(name="pool"),
        layers.GaussianNoise(0.1, name="noise"),
        layers.SpatialDropout2D(0.2, name="spatial_dropout"),
        layers.Flatten(name="flatten"),
        layers.GaussianDropout(0.1, name="gaussian_dropout"),
        layers.Dense(5, activation="softmax", name="classifier"),
    ], name="nested_augment")
    return model, 0, 255


@fixture("Keras' RandomCrop (the identity at inference, as Keras 3; an 8x8 window when "
         "training) before convolutions and a global pooling, which take both sizes")
def fx_random_crop():
    model = keras.Sequential([
        keras.Input((12, 12, 3)),
        layers.RandomCrop(8, 8, name="crop"),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.GlobalAveragePooling2D(name="pool"),
        layers.Dense(5, activation="softmax", name="classifier"),
    ], name="random_crop")
    return model, 0, 255


@fixture("ConvNeXt's block: DepthwiseConv2D 7x7, LayerNormalization (epsilon 1e-6), Dense "
         "4C on the channels, gelu, Dense C, LayerScale, residual Add; a LayerNormalization "
         "without center")
def fx_convnext_block():
    x = keras.Input((6, 6, 8), name="in")
    y = layers.DepthwiseConv2D(7, padding="same", name="dw")(x)
    y = layers.LayerNormalization(epsilon=1e-6, name="ln")(y)
    y = layers.Dense(32, name="pw1")(y)
    y = layers.Activation("gelu", name="gelu")(y)
    y = layers.Dense(8, name="pw2")(y)
    y = LayerScale(1e-6, 8, name="layer_scale")(y)
    y = layers.Add(name="add")([x, y])
    y = layers.LayerNormalization(center=False, name="ln_nocenter")(y)
    return keras.Model(x, y, name="convnext_block"), -1, 1


@fixture("Keras 3 operations on a tensor and a number (MobileNetV3's hard sigmoid "
         "ReLU(6)(x + 3) * (1/6); x - 1) and the Subtract and Average layers")
def fx_scalar_ops():
    x = keras.Input((5, 5, 4), name="in")
    a = layers.Conv2D(4, 1, name="conv")(x)
    h = layers.ReLU(6.0, name="relu6")(a + 3.0) * (1.0 / 6.0)
    s = layers.Subtract(name="sub")([h, x])
    m = layers.Average(name="avg")([s, a, x])
    return keras.Model(x, (m - 1.0) * 0.5, name="scalar_ops"), -4, 4


@fixture("A U-Net style decoder: Conv2DTranspose (2x2 stride 2; 1x1 stride 2, smaller than "
         "its stride; 3x3 stride 2 'same' with output_padding=1; 3x3 stride 1 'same' with relu "
         "(TensorFlow's CPU kernels refuse dilation); 'valid' 3x2 stride (2, 1)), a skip Concatenate, GroupNormalization "
         "(4 groups; one group per channel without center/scale)")
def fx_unet_decoder():
    x = keras.Input((6, 6, 4), name="in")
    d = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="down")(x)
    u = layers.Conv2DTranspose(4, 2, strides=2, name="up_k2s2")(d)
    p = layers.Conv2DTranspose(4, 1, strides=2, name="up_k1s2")(d)
    k = layers.Concatenate(name="skip")([x, u, p])
    g = layers.GroupNormalization(groups=4, epsilon=1e-4, name="gn")(k)
    t = layers.Conv2DTranspose(5, 3, strides=2, padding="same", output_padding=1,
                               name="up_same_op")(g)
    t = layers.Conv2DTranspose(5, 3, padding="same", activation="relu", name="up_s1")(t)
    v = layers.Conv2DTranspose(3, (3, 2), strides=(2, 1), use_bias=False, name="up_valid")(d)
    v = layers.GroupNormalization(groups=3, center=False, scale=False, name="gn_plain")(v)
    return keras.Model(x, [t, v], name="unet_decoder"), -1, 1


@fixture("Resampling and elementwise layers: UpSampling2D (nearest 2x2, bilinear (2, 3)), "
         "Resizing (bilinear down to 5x7, nearest up to 9x11), Maximum and Minimum of three "
         "tensors, Identity")
def fx_resample_minmax():
    x = keras.Input((6, 4, 3), name="in")
    c = layers.Conv2D(6, 3, padding="same", name="conv")(x)
    n = layers.UpSampling2D(2, name="up_nearest")(c)
    b = layers.UpSampling2D((2, 3), interpolation="bilinear", name="up_bilinear")(c)
    b = layers.Resizing(12, 8, name="resize_back")(b)
    m = layers.Maximum(name="max")([n, b, layers.Identity(name="identity")(n)])
    mi = layers.Minimum(name="min")([m, b])
    r = layers.Resizing(5, 7, name="resize_down")(mi)
    r = layers.Resizing(9, 11, interpolation="nearest", name="resize_nearest")(r)
    return keras.Model(x, r, name="resample_minmax"), -1, 1


@fixture("Permute of every kind: height and width swapped (2, 1, 3) between two convs and "
         "back, channels first (3, 1, 2) with a conv over it, a cycle (2, 3, 1) before Flatten; "
         "UnitNormalization on images and on features; RandomCrop at its input's size "
         "(identity at inference)")
def fx_permute_unitnorm():
    x = keras.Input((5, 8, 4), name="in")
    c = layers.RandomCrop(5, 8, name="random_crop")(x)
    c = layers.Conv2D(6, (3, 2), padding="same", name="conv")(c)
    t = layers.Permute((2, 1, 3), name="swap_hw")(c)
    t = layers.Conv2D(6, (1, 3), activation="relu", name="conv_t")(t)
    t = layers.Permute((2, 1, 3), name="swap_back")(t)
    u = layers.UnitNormalization(name="unit_img")(t)
    f = layers.Permute((3, 1, 2), name="channels_first")(u)
    f = layers.Conv2D(3, 2, name="conv_cf")(f)
    f = layers.Permute((2, 3, 1), name="cycle")(f)
    s = layers.Flatten(name="flat")(f)
    s = layers.Dense(12, name="dense")(s)
    s = layers.UnitNormalization(name="unit_vec")(s)
    return keras.Model(x, s, name="permute_unitnorm"), -1, 1


@fixture("Models as layers in a functional model: a functional tower (Conv2D + BatchNorm) "
         "and a Sequential classifier head, each with weights, beside a layer of the outer "
         "model; CenterCrop before them")
def fx_nested_tower():
    t_in = keras.Input((10, 10, 3), name="tower_in")
    t = layers.Conv2D(6, 3, padding="same", activation="relu", name="tower_conv")(t_in)
    t = layers.BatchNormalization(name="tower_bn")(t)
    tower = keras.Model(t_in, t, name="tower")
    head = keras.Sequential([layers.GlobalAveragePooling2D(name="head_pool"),
                             layers.Dense(4, name="head_dense")], name="head")
    x = keras.Input((12, 12, 3), name="in")
    c = layers.CenterCrop(10, 10, name="crop")(x)
    y = layers.Add(name="add")([tower(c), layers.Conv2D(6, 1, name="side")(c)])
    return keras.Model(x, head(y), name="nested_tower"), -1, 1


@fixture("A layer called twice (one set of weights, two inbound nodes) and a nested functional "
         "sub-model used as a layer")
def fx_shared_nested():
    inner_in = keras.Input((4, 4, 2), name="inner_in")
    inner = layers.Conv2D(2, 1, name="inner_conv")(inner_in)
    inner = layers.BatchNormalization(name="inner_bn")(inner)
    sub = keras.Model(inner_in, inner, name="submodel")
    x = keras.Input((4, 4, 2), name="in")
    shared = layers.Conv2D(2, 3, padding="same", name="shared_conv")
    a = shared(x)
    b = shared(layers.Activation("relu", name="act")(x))
    y = layers.Add(name="add")([a, b])
    y = sub(y)
    return keras.Model(x, y, name="shared_nested"), -1, 1


@fixture("One conv tower (a Sequential model with BatchNorm) applied to several views of an "
         "image, as a rotation-invariant galaxy classifier applies one to rotated copies: the "
         "tower called three times, the features concatenated; a shared Dense head called twice")
def fx_shared_tower():
    tower = keras.Sequential([layers.Conv2D(4, 3, activation="relu", name="t_conv"),
                              layers.BatchNormalization(name="t_bn"),
                              layers.MaxPooling2D(2, name="t_pool"),
                              layers.Flatten(name="t_flat")], name="tower")
    x = keras.Input((8, 8, 2), name="image")
    views = [x, layers.Activation("relu", name="view_relu")(x),
             layers.Activation("sigmoid", name="view_sigmoid")(x)]
    features = layers.Concatenate(name="features")([tower(v) for v in views])
    head = layers.Dense(3, name="head")
    y = layers.Add(name="both")([head(features), head(layers.Activation("tanh", name="squash")(features))])
    return keras.Model(x, y, name="shared_tower"), -1, 1


def export_fixture(name, builder, out, seed):
    keras.utils.set_random_seed(name_seed(seed, name))
    model, lo, hi = builder()
    rng = np.random.default_rng(name_seed(seed, name) + 1)
    randomise_weights(model, rng, bias_std=0.1,
                      normalization=([0.3, 0.5, 0.7], [0.04, 0.09, 0.25]))
    in_shape = shape_list(model.input_shape)
    x = rng.uniform(lo, hi, [2] + in_shape[1:]).astype("float32")  # batch 2
    ys = run_model(model, x)
    base = os.path.join(out, name)
    model.save(base + ".keras")
    try:
        model.save(base + ".h5")  # legacy HDF5 (Keras warns that it is legacy)
    except TypeError:  # Keras 3.15 cannot write its Random* layers' seed state in the legacy form
        if os.path.exists(base + ".h5"):
            os.remove(base + ".h5")
    with open(base + ".json", "w") as f:
        f.write(model.to_json())
    model.save_weights(base + ".weights.h5")
    np.save(base + ".input.npy", x)
    if len(ys) == 1:
        np.save(base + ".output.npy", ys[0])
    else:
        for i, y in enumerate(ys):
            np.save(base + f".output{i}.npy", y)
    # Check every saved form reloads and reproduces the outputs.
    custom = {"CustomScaleLayer": CustomScaleLayer} if CustomScaleLayer else {}
    if LayerScale:
        custom["LayerScale"] = LayerScale
    diffs = {}

    def reload(form, load):
        # Keras 3.15 cannot rebuild a functional model with an operation on a tensor and a number
        # (`x + 3.0`: "Only input tensors may be passed as positional arguments"), though it
        # saves it; such a form is written but not re-checked.
        try:
            m = load()
        except ValueError as e:
            if "positional arguments" not in str(e):
                raise
            print(f"{name}: Keras cannot reload its {form} form ({e}); not re-checked")
            return
        diffs[form] = max(float(np.max(np.abs(a - b))) for a, b in zip(ys, run_model(m, x)))

    reload("keras", lambda: keras.models.load_model(base + ".keras", compile=False))
    if os.path.exists(base + ".h5"):
        reload("h5", lambda: keras.models.load_model(base + ".h5", compile=False, custom_objects=custom))

    def from_json():
        with open(base + ".json") as f:
            m = keras.models.model_from_json(f.read(), custom_objects=custom)
        m.load_weights(base + ".weights.h5")
        return m

    reload("json+weights", from_json)
    sizes = {ext: os.path.getsize(base + ext) for ext in (".keras", ".h5", ".json", ".weights.h5")
             if os.path.exists(base + ext)}
    return model, ys, diffs, sizes


def cmd_fixtures(args):
    os.makedirs(args.out, exist_ok=True)
    names = list(FIXTURES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
    rows, failed = [], []
    for name in names:
        builder, covers = FIXTURES[name]
        try:
            model, ys, diffs, sizes = export_fixture(name, builder, args.out, args.seed)
        except Exception as e:
            failed.append(name)
            print(f"keras_export: error: fixture {name}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc()
            continue
        bad = {k: v for k, v in diffs.items() if v > 1e-5}
        if bad:
            failed.append(name)
            print(f"keras_export: error: fixture {name}: reloaded outputs differ {bad}",
                  file=sys.stderr)
        classes = sorted({type(l).__name__ for l in _all_layers(model)} - {"InputLayer"})
        rows.append((name, shape_list(model.input_shape),
                     [list(y.shape) for y in ys], model.count_params(), classes, covers, sizes))
        print(f"{name}: in {shape_list(model.input_shape)} out {[list(y.shape) for y in ys]}, "
              f"{model.count_params()} params, files {sum(sizes.values())} B, reload diffs "
              + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()), flush=True)
        keras.backend.clear_session()
    if args.readme and not args.only:
        write_fixture_readme(args.out, rows, args.seed)
    if failed:
        print(f"keras_export: {len(failed)} fixture(s) failed: {failed}", file=sys.stderr)
        return 1
    return 0


def write_fixture_readme(out, rows, seed):
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    lines = [
        "# Keras reference fixtures",
        "",
        "Tiny functional Keras models with their inputs and the outputs real Keras computes, for",
        "exact-parity tests of the Keras importer (frontend/keras/). Generated, do not edit:",
        "",
        "```sh",
        "tools/setup_keras.sh        # optional: pip installs tensorflow-cpu 2.21.* (Keras 3) and h5py",
        f"python3 tools/keras_export.py fixtures --out tests/fixtures/keras --seed {seed}",
        "```",
        "",
        f"Made with TensorFlow {tf.__version__}, Keras {keras.__version__}, h5py "
        f"{__import__('h5py').version.version}, NumPy {np.__version__}, Python "
        f"{sys.version.split()[0]}, backend {keras.backend.backend()}, CPU, "
        "TF_ENABLE_ONEDNN_OPTS=0.",
        "",
        "For each fixture `NAME`:",
        "",
        "| file | what |",
        "|---|---|",
        "| `NAME.keras` | Keras 3 zip: `metadata.json`, `config.json`, `model.weights.h5` (`model.save`) |",
        "| `NAME.h5` | legacy HDF5 (`model.save(\"NAME.h5\")`): `model_config` attribute + `model_weights/` |",
        "| `NAME.json` | `model.to_json()` (same config as the zip's `config.json`) |",
        "| `NAME.weights.h5` | `model.save_weights` (same layout as the zip's `model.weights.h5`) |",
        "| `NAME.input.npy` | float32, batch 2, NHWC |",
        "| `NAME.output.npy` | float32, `model(x, training=False)`; several outputs: `NAME.output0.npy`, `NAME.output1.npy`, ... in `output_layers` order |",
        "",
        "Inputs are uniform in [-1, 1) unless the table says otherwise. Weights: Keras' own",
        "initialisers from a fixed seed, then BatchNormalization gamma ~ U(0.5, 1.5),",
        "beta ~ N(0, 0.1), moving_mean ~ N(0, 0.1), moving_variance ~ U(0.5, 1.5); every bias",
        "(Conv2D, DepthwiseConv2D, SeparableConv2D, Dense) ~ N(0, 0.1); Normalization layers",
        "whose mean/variance are weights get mean [0.3, 0.5, 0.7], variance [0.04, 0.09, 0.25].",
        "The exporter reloads every file (.keras, .h5, .json + .weights.h5) and checks that it",
        "reproduces the outputs. How the files are laid out (zip members, HDF5 groups, variable",
        "order, config keys of every layer class): [FORMAT_NOTES.md](FORMAT_NOTES.md).",
        "",
        "| fixture | input | output(s) | params | layer classes | covers |",
        "|---|---|---|---|---|---|",
    ]
    for name, ins, outs, params, classes, covers, sizes in rows:
        lines.append(f"| `{name}` | {ins[1:]} | {'; '.join(str(o[1:]) for o in outs)} | {params} "
                     f"| {', '.join(classes)} | {covers} |")
    lines += [
        "",
        f"{len(rows)} fixtures, {total / 1024:.0f} KiB in all. The HDF5 files (`.h5`, `.weights.h5`, "
        "and the one inside `.keras`) carry 2-3 KB of HDF5 metadata per layer (a group with a "
        "`vars` subgroup and attributes, even for layers without weights), so a 5-layer model "
        "takes 15-20 KB per file; they compress about tenfold (git stores them compressed).",
        "",
        "Things to know: Keras 3 writes activation `swish` as `\"silu\"` in every config; "
        "`hard_sigmoid` is `relu6(x + 3) / 6`; AveragePooling2D `same` excludes the padding from "
        "the average; Normalization computes `(x - mean) / max(sqrt(variance), 1e-7)` (no epsilon "
        "inside the root); BatchNormalization computes `(x - moving_mean) / sqrt(moving_variance "
        "+ epsilon) * gamma + beta`. Keras 3 writes activation `hard_swish` as `\"hard_silu\"` "
        "(`x * relu6(x + 3) / 6`); activation `gelu` is always the exact (erf) form: "
        "`gelu(x, approximate=True)` has no name a config can carry.",
        ""]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    z = sub.add_parser("zoo", help="export every keras.applications model (weights=None)")
    z.add_argument("--out", required=True)
    z.add_argument("--models", help="comma-separated Keras names, e.g. ResNet50,MobileNetV2")
    z.add_argument("--batch", type=int, default=1)
    z.add_argument("--seed", type=int, default=1)
    z.add_argument("--no-check", action="store_true", help="skip reloading the saved .keras")
    s = sub.add_parser("float64", help="the exported models computed by Keras in float64 "
                       "(NAME.logits64.npy) and Keras float32's distance from that, into NAME.json")
    s.add_argument("--out", required=True, help="the folder zoo wrote")
    s.add_argument("--models", required=True)
    fx = sub.add_parser("fixtures", help="export the tiny per-layer fixtures")
    fx.add_argument("--out", required=True)
    fx.add_argument("--seed", type=int, default=1)
    fx.add_argument("--only", help="comma-separated fixture names (no README rewrite)")
    fx.add_argument("--no-readme", dest="readme", action="store_false")
    args = ap.parse_args()
    keras.utils.set_random_seed(getattr(args, "seed", 1))
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:
        pass
    return {"zoo": cmd_zoo, "float64": cmd_float64, "fixtures": cmd_fixtures}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
