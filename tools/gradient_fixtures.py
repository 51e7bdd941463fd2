#!/usr/bin/env python3
"""Whole-network gradient fixtures: small Keras models with seeded random weights, a batch of
random images and labels, and the gradient of the mean sparse categorical cross-entropy with
respect to every weight as Keras computes it (tf.GradientTape, training=True), stored so the
tests (tests/train/test_keras_gradients.cpp) compare cnnc's training graph with Keras' without
TensorFlow.

    python3 tools/gradient_fixtures.py [--out tests/fixtures/gradients]

Writes NAME.keras, NAME.x.npy, NAME.y.npy (labels as float32 class indices), and
NAME.grad.LAYER.ROLE.npy per weight (ROLE: kernel, bias, gamma, beta; depthwise_kernel is saved
as kernel and LayerScale's weight as scale, cnnc's roles for them), plus NAME.loss.npy. Needs tools/setup_keras.sh.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

L = keras.layers


def lenet_like():
    return keras.Sequential([
        keras.Input((12, 12, 2)),
        L.Conv2D(4, 3, activation="tanh", name="c1"),
        L.AveragePooling2D(2, name="p1"),
        L.Conv2D(6, 3, padding="same", activation="relu", name="c2"),
        L.MaxPooling2D(2, name="p2"),
        L.Flatten(name="f"),
        L.Dense(8, activation="sigmoid", name="d1"),
        L.Dense(5, activation="softmax", name="out"),
    ], name="lenet_like")


def strided_depthwise():
    return keras.Sequential([
        keras.Input((13, 11, 3)),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu6", name="c1"),
        L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw"),
        L.Conv2D(6, 2, dilation_rate=2, activation="tanh", name="c2"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(4, activation="softmax", name="out"),
    ], name="strided_depthwise")


def residual():
    x = keras.Input((10, 10, 3))
    a = L.Conv2D(6, 3, padding="same", name="a")(x)
    b = L.Conv2D(6, 1, activation="sigmoid", name="b")(a)
    s = L.Add(name="s")([a, b])
    r = L.LeakyReLU(negative_slope=0.2, name="lr")(s)
    z = L.ZeroPadding2D(((1, 0), (0, 1)), name="z")(r)
    c = L.Conv2D(4, 3, name="c", activation="relu")(z)
    k = L.Cropping2D(((1, 1), (0, 1)), name="k")(c)
    f = L.Flatten(name="f")(k)
    y = L.Dense(3, activation="softmax", name="out")(f)
    return keras.Model(x, y, name="residual")


def batchnorm_net():
    return keras.Sequential([
        keras.Input((10, 10, 2)),
        L.Conv2D(6, 3, padding="same", use_bias=False, name="c1"),
        L.BatchNormalization(name="bn1"),
        L.ReLU(name="r1"),
        L.MaxPooling2D(2, name="p1"),
        L.Conv2D(8, 3, use_bias=False, name="c2"),
        L.BatchNormalization(scale=False, epsilon=0.01, name="bn2"),
        L.Activation("tanh", name="t2"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(6, use_bias=False, name="d"),  # a bias before a batchnorm has no gradient
        L.BatchNormalization(name="bn3"),
        L.Activation("sigmoid", name="s3"),
        L.Dense(3, activation="softmax", name="out"),
    ], name="batchnorm_net")


def dense_block():
    """DenseNet's pattern: each conv's output concatenated to what it read."""
    x = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", name="stem")(x)
    for i in range(2):
        y = L.BatchNormalization(name=f"bn{i}")(h)
        y = L.ReLU(name=f"r{i}")(y)
        y = L.Conv2D(3, 3, padding="same", name=f"c{i}")(y)
        h = L.Concatenate(name=f"cat{i}")([h, y])
    h = L.AveragePooling2D(2, name="pool")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(x, L.Dense(4, activation="softmax", name="out")(h), name="dense_block")


def shared_tower():
    """One tower (conv, BatchNorm, pooling) applied to two views of the image: its weights'
    gradients are the sums over both calls, each call's BatchNorm on its own batch statistics."""
    tower = keras.Sequential([L.Conv2D(4, 3, activation="tanh", name="t_conv"),
                              L.BatchNormalization(name="t_bn"),
                              L.GlobalAveragePooling2D(name="t_gap")], name="tower")
    x = keras.Input((8, 8, 2))
    h = L.Concatenate(name="cat")([tower(x), tower(L.ReLU(name="view")(x))])
    return keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="shared_tower")


def mbconv():
    """EfficientNet's and MobileNetV3's blocks: swish, a squeeze-and-excitation gate (a
    broadcast multiply), MobileNetV3's hard sigmoid as Keras writes it (ReLU6(x + 3) * (1/6):
    constant affine maps), hard_silu, and the other activations whose derivative needs their
    input (gelu, gelu_tanh, mish, elu, selu, softplus, softsign, log_sigmoid)."""
    x = keras.Input((8, 8, 3))
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="swish", name="stem")(x)
    d = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)  # then BatchNorm
    d = L.BatchNormalization(name="bn")(d)
    d = L.Activation("hard_silu", name="hs")(d)
    g = L.GlobalAveragePooling2D(keepdims=True, name="se_gap")(d)
    g = L.Conv2D(4, 1, activation="gelu", name="se_reduce")(g)
    g = L.Conv2D(8, 1, name="se_expand")(g)
    g = L.ReLU(6.0, name="hsig")(g + 3.0) * (1.0 / 6.0)
    d = L.Multiply(name="se")([d, g])
    e = L.Conv2D(8, 1, activation="mish", name="project")(d)
    h = L.Add(name="res")([h, e])
    acts = ["elu", "selu", "softplus", "softsign", "log_sigmoid"]
    parts = [L.Conv2D(2, 1, activation=a, name=f"c_{a}")(h) for a in acts]
    h = L.Concatenate(name="cat")(parts)
    h = L.Conv2D(4, 3, activation=keras.activations.gelu, name="c_gelu")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="mbconv")


def convnext_block():
    """ConvNeXt's block: a 7x7 depthwise conv, LayerNormalization over the channels, pointwise
    Dense layers with gelu, keras.applications' LayerScale (a trainable per-channel scale), the
    residual add; LayerNormalization before the classifier."""
    from keras.src.applications.convnext import LayerScale
    x = keras.Input((7, 7, 3))
    h = L.Conv2D(8, 2, strides=2, name="stem")(x)
    h = L.LayerNormalization(epsilon=1e-6, name="stem_ln")(h)
    d = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
    d = L.LayerNormalization(epsilon=1e-6, name="ln")(d)
    d = L.Dense(16, activation="gelu", name="pw1")(d)
    d = L.Dense(8, name="pw2")(d)
    d = LayerScale(1e-6, 8, name="ls")(d)
    h = L.Add(name="res")([h, d])
    h = L.GlobalAveragePooling2D(name="gap")(h)
    h = L.LayerNormalization(epsilon=1e-6, name="head_ln")(h)
    return keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="convnext_block")


def encoder_decoder():
    """An encoder-decoder (U-Net's shape): a strided conv and GroupNormalization down,
    Conv2DTranspose up (strided with same padding; strided past the kernel with output_padding;
    stride 1), a skip connection concatenated, Resizing (bilinear) and UpSampling2D (nearest)."""
    x = keras.Input((8, 8, 3))
    e = L.Conv2D(6, 3, padding="same", activation="relu", name="e1")(x)
    d = L.Conv2D(8, 3, strides=2, padding="same", name="down")(e)  # 4x4
    d = L.GroupNormalization(groups=4, name="gn")(d)
    d = L.Activation("swish", name="act")(d)
    u = L.Conv2DTranspose(6, 3, strides=2, padding="same", name="up")(d)  # 8x8
    u = L.Concatenate(name="skip")([u, e])
    u = L.Conv2D(6, 3, strides=2, name="c")(u)  # 3x3
    u = L.Conv2DTranspose(4, 2, strides=3, output_padding=1, name="up3")(u)  # 9x9
    u = L.GroupNormalization(groups=2, epsilon=0.01, name="gn2")(u)
    u = L.Resizing(5, 7, interpolation="bilinear", name="rs")(u)
    u = L.UpSampling2D((2, 1), interpolation="nearest", name="us")(u)  # 10x7
    # Stride 1 (TensorFlow's CPU has no dilated Conv2DTranspose).
    u = L.Conv2DTranspose(4, 2, activation="tanh", name="up1")(u)  # 11x8
    u = L.Conv2D(4, 3, strides=2, name="c2")(u)
    h = L.Flatten(name="f")(u)
    return keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="encoder_decoder")


def merge_layers():
    """Keras' merge layers: Maximum of three (one a broadcast 1x1 map), Minimum, Subtract,
    Average."""
    x = keras.Input((6, 6, 2))
    a = L.Conv2D(4, 3, padding="same", activation="tanh", name="a")(x)
    b = L.Conv2D(4, 1, activation="tanh", name="b")(x)
    c = L.Conv2D(4, 2, padding="same", name="c")(x)
    g = L.GlobalAveragePooling2D(keepdims=True, name="g")(c)
    m = L.Maximum(name="max")([a, b, g])
    n = L.Minimum(name="min")([m, c])
    d = L.Subtract(name="sub")([n, b])
    h = L.Average(name="avg")([d, a, c])
    h = L.Flatten(name="f")(h)
    return keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="merge_layers")


MODELS = {"lenet_like": lenet_like, "strided_depthwise": strided_depthwise, "residual": residual,
          "batchnorm_net": batchnorm_net, "dense_block": dense_block, "shared_tower": shared_tower,
          "mbconv": mbconv, "convnext_block": convnext_block, "encoder_decoder": encoder_decoder,
          "merge_layers": merge_layers}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "gradients"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--only", help="comma-separated model names (the others are left as they are)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for seed, (name, build) in enumerate(MODELS.items(), start=1):
        if args.only and name not in args.only.split(","):
            continue
        keras.utils.set_random_seed(seed)
        model = build()
        rng = np.random.default_rng(seed)
        for w in model.weights:  # bias too, so the bias gradient path is exercised with values
            values = rng.normal(0, 0.5, w.shape)
            if "moving_variance" in w.path:
                values = np.abs(values) + 0.5
            w.assign(values.astype("float32"))
        classes = model.output_shape[-1]
        x = rng.uniform(-1, 1, (args.batch,) + model.input_shape[1:]).astype("float32")
        y = rng.integers(0, classes, args.batch)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        base = os.path.join(args.out, name)
        model.save(base + ".keras")
        np.save(base + ".x.npy", x)
        np.save(base + ".y.npy", y.astype("float32").reshape(-1, 1))
        np.save(base + ".loss.npy", np.array([float(loss)], "float32"))
        for w, g in zip(model.trainable_weights, grads):
            layer, role = w.path.split("/")[-2], w.path.split("/")[-1]
            role = {"depthwise_kernel": "kernel"}.get(role, role)
            if type(model.get_layer(layer)).__name__ == "LayerScale":
                role = "scale"  # cnnc's affine; Keras names LayerScale's one weight "variable"
            np.save(f"{base}.grad.{layer}.{role}.npy", g.numpy().astype("float32"))
        print(f"{name}: loss {float(loss):.6f}, {len(grads)} gradients")


if __name__ == "__main__":
    main()
