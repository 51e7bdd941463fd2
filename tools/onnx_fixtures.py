#!/usr/bin/env python3
"""Writes the ONNX test fixtures: small NCHW models built with onnx.helper in the patterns of
torchvision's exports (conv + BN + ReLU, residual blocks, MobileNet's inverted residuals with
squeeze-and-excitation and hard-swish, Inception's concatenated branches with ceil-mode pooling,
preprocessing constants, Gemm after a spatial Flatten), seeded random weights, and ONNX
Runtime's outputs for a seeded input. Tests read them without onnx or onnxruntime installed.

    python3 tools/onnx_fixtures.py [--out tests/fixtures/onnx]

Per model NAME: NAME.onnx, NAME.input.npy (NCHW, as ONNX Runtime took it), NAME.output.npy.
Needs onnx and onnxruntime (pip); not run by CI.
"""
import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, name, seed):
        self.name, self.rng = name, np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, values, name=None):
        name = name or f"w{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(values), name))
        return name

    def weight(self, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        s = scale if scale is not None else 1.0 / np.sqrt(fan_in)
        return self.const(self.rng.uniform(-s, s, shape).astype(np.float32))

    def op(self, op_type, inputs, name=None, outputs=1, **attrs):
        self.count += 1
        base = name or f"/{op_type.lower()}_{self.count}"
        outs = [f"{base}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs[0]

    def conv(self, x, cin, cout, k, group=1, **attrs):
        w = self.weight(cout, cin // group, k, k)
        b = self.const(self.rng.uniform(-0.1, 0.1, cout).astype(np.float32))
        return self.op("Conv", [x, w, b], kernel_shape=[k, k], group=group, **attrs)

    def bn(self, x, c):
        r = self.rng
        args = [self.const(r.uniform(0.5, 1.5, c).astype(np.float32)), self.const(r.uniform(-0.2, 0.2, c).astype(np.float32)),
                self.const(r.uniform(-0.2, 0.2, c).astype(np.float32)), self.const(r.uniform(0.5, 2.0, c).astype(np.float32))]
        return self.op("BatchNormalization", [x] + args, epsilon=1e-5)

    def gemm(self, x, k, m, trans_b=1, **attrs):
        w = self.weight(m, k) if trans_b else self.weight(k, m)
        b = self.const(self.rng.uniform(-0.1, 0.1, m).astype(np.float32))
        return self.op("Gemm", [x, w, b], transB=trans_b, **attrs)

    def model(self, x_shape, out, opset):
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch"] + list(x_shape[1:]))
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, self.name, [x], [y], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m)  # the output's shape, which the checker wants
        onnx.checker.check_model(m)
        return m


def conv_bn_gemm():
    # Conv + BN + ReLU, max pooling, a strided conv with asymmetric pads, then a Flatten of a
    # 4x4 map before Gemm: its rows are in NCHW order, which the importer permutes.
    b = Builder("conv_bn_gemm", 1)
    x = b.op("Relu", [b.bn(b.conv("input", 3, 8, 3, pads=[1, 1, 1, 1]), 8)])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [b.conv(x, 8, 16, 3, strides=[2, 2], pads=[0, 0, 1, 1])])
    x = b.op("Flatten", [x], axis=1)
    x = b.op("Softmax", [b.gemm(x, 16 * 4 * 4, 10)], axis=1)
    return b.model((2, 3, 16, 16), x, 13)


def resnet_block():
    b = Builder("resnet_block", 2)
    x = b.op("Relu", [b.bn(b.conv("input", 3, 16, 7, strides=[2, 2], pads=[3, 3, 3, 3]), 16)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.op("Relu", [b.bn(b.conv(x, 16, 16, 3, pads=[1, 1, 1, 1]), 16)])
    y = b.bn(b.conv(y, 16, 16, 3, pads=[1, 1, 1, 1]), 16)
    x = b.op("Relu", [b.op("Add", [y, x])])
    s = b.bn(b.conv(x, 16, 32, 1, strides=[2, 2]), 32)
    y = b.op("Relu", [b.bn(b.conv(x, 16, 32, 3, strides=[2, 2], pads=[1, 1, 1, 1]), 32)])
    x = b.op("Relu", [b.op("Add", [b.bn(b.conv(y, 32, 32, 3, pads=[1, 1, 1, 1]), 32), s])])
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    return b.model((2, 3, 32, 32), b.gemm(x, 32, 10), 11)


def mobilenet_block():
    # Inverted residual (ReLU6 as Clip with constant bounds), a depthwise conv, hard-swish and
    # squeeze-and-excitation with PyTorch's hard-sigmoid, a Reshape to (N, -1) before Gemm.
    b = Builder("mobilenet_block", 3)
    zero, six = b.const(np.float32(0)), b.const(np.float32(6))
    x = b.op("HardSwish", [b.bn(b.conv("input", 3, 16, 3, strides=[2, 2], pads=[1, 1, 1, 1]), 16)])
    y = b.op("Clip", [b.bn(b.conv(x, 16, 48, 1), 48), zero, six])
    y = b.op("Clip", [b.bn(b.conv(y, 48, 48, 3, group=48, pads=[1, 1, 1, 1]), 48), zero, six])
    se = b.op("GlobalAveragePool", [y])
    se = b.op("Relu", [b.conv(se, 48, 12, 1)])
    se = b.op("HardSigmoid", [b.conv(se, 12, 48, 1)], alpha=1.0 / 6, beta=0.5)
    y = b.op("Mul", [y, se])
    y = b.bn(b.conv(y, 48, 16, 1), 16)
    x = b.op("Add", [x, y])
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Reshape", [x, b.const(np.array([-1, 16], dtype=np.int64))])
    x = b.op("HardSwish", [b.gemm(x, 16, 24)])
    x = b.op("Dropout", [x])
    return b.model((2, 3, 24, 24), b.gemm(x, 24, 7), 17)


def inception_block():
    # Branches concatenated on the channels, ceil-mode max pooling (GoogLeNet's), an explicit Pad
    # before a valid conv, average pooling, MatMul + Add as the classifier, LogSoftmax.
    b = Builder("inception_block", 4)
    x = b.op("Relu", [b.conv("input", 3, 16, 3, pads=[1, 1, 1, 1])])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)  # 15 -> 7 floor, 8 ceil
    b1 = b.op("Relu", [b.conv(x, 16, 8, 1)])
    b2 = b.op("Relu", [b.conv(b.op("Relu", [b.conv(x, 16, 8, 1)]), 8, 12, 3, pads=[1, 1, 1, 1])])
    b3 = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    b3 = b.op("Relu", [b.conv(b3, 16, 4, 1)])
    x = b.op("Concat", [b1, b2, b3], axis=1)
    x = b.op("Pad", [x, b.const(np.array([0, 0, 1, 2, 0, 0, 1, 0], dtype=np.int64))], mode="constant")
    x = b.op("Sigmoid", [b.conv(x, 24, 16, 3)])
    x = b.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", [b.op("GlobalMaxPool", [x])])
    x = b.op("Add", [b.op("MatMul", [x, b.weight(16, 10)]), b.const(np.linspace(-0.5, 0.5, 10).astype(np.float32))])
    return b.model((2, 3, 15, 15), b.op("LogSoftmax", [x], axis=-1), 21)


def preprocess():
    # Normalisation constants (Sub, Div per channel), SAME_UPPER padding, LeakyReLU, Keras-style
    # hard sigmoid (alpha 0.2), Gemm with alpha, beta and transB = 0, Identity.
    b = Builder("preprocess", 5)
    x = b.op("Sub", ["input", b.const(np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1))])
    x = b.op("Div", [x, b.const(np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1))])
    x = b.op("LeakyRelu", [b.conv(x, 3, 8, 3, strides=[2, 2], auto_pad="SAME_UPPER")], alpha=0.1)
    x = b.op("HardSigmoid", [x], alpha=0.2, beta=0.5)
    x = b.op("Flatten", [b.op("Identity", [x])])
    x = b.gemm(x, 8 * 5 * 5, 6, trans_b=0, alpha=0.5, beta=2.0)
    return b.model((2, 3, 9, 9), b.op("Tanh", [x]), 13)


def tf2onnx_style():
    # What tf2onnx writes for a Keras model: an N x H x W x C input transposed to NCHW first,
    # BatchNorm as Mul + Add of [C, 1, 1] constants, a crop as a Slice, a Reshape to the tensor's own shape, a
    # Reshape of N x C to N x C x 1 x 1 before a 1x1 conv (MobileNet's head), Squeeze of the
    # spatial axes, MatMul + Add.
    b = Builder("tf2onnx_style", 6)
    x = b.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    x = b.conv(x, 3, 8, 3, pads=[1, 1, 1, 1])
    x = b.op("Mul", [x, b.const(b.rng.uniform(0.5, 1.5, (8, 1, 1)).astype(np.float32))])
    x = b.op("Relu", [b.op("Add", [x, b.const(b.rng.uniform(-0.2, 0.2, (8, 1, 1)).astype(np.float32))])])
    # Keras' Cropping2D((1, 0), (0, 1)) as a Slice of H and W (NASNet's).
    x = b.op("Slice", [x, b.const(np.array([1, 0], np.int64)), b.const(np.array([2**63 - 1, -1], np.int64)),
                       b.const(np.array([2, 3], np.int64))])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Reshape", [x, b.const(np.array([-1, 8, 1, 1], dtype=np.int64))])
    x = b.op("Squeeze", [x, b.const(np.array([2, 3], dtype=np.int64))])
    x = b.op("Reshape", [x, b.const(np.array([-1, 8, 1, 1], dtype=np.int64))])
    x = b.op("Flatten", [b.op("Relu", [b.conv(x, 8, 6, 1)])])
    x = b.op("Add", [b.op("MatMul", [x, b.weight(6, 5)]), b.const(np.linspace(-0.3, 0.3, 5).astype(np.float32))])
    m = b.model((2, 6, 6, 3), b.op("Softmax", [x], axis=1), 17)
    return m


def flatten_features():
    # Per-feature operations after a Flatten of a 3x3 map (BatchNorm1d, a Mul and an Add of
    # 36 constants, Sum): their constants follow ONNX's c*H*W + h*W + w order, which the
    # importer reorders as it does the Gemm's rows.
    b = Builder("flatten_features", 7)
    x = b.op("Relu", [b.conv("input", 2, 4, 3, strides=[2, 2])])  # 7x7 -> 3x3x4
    x = b.op("Flatten", [x])
    x = b.bn(x, 36)
    x = b.op("Mul", [x, b.const(b.rng.uniform(0.5, 1.5, 36).astype(np.float32))])
    x = b.op("Add", [x, b.const(b.rng.uniform(-0.3, 0.3, (1, 36)).astype(np.float32))])
    x = b.op("Sum", [b.op("Relu", [x]), x])
    return b.model((2, 2, 7, 7), b.gemm(x, 36, 5), 13)


def decoder():
    # An encoder-decoder's upsampling as PyTorch exports it: ConvTranspose (2x2 stride 2; 3x3
    # stride 2 with pads 1 and output_padding 1), nn.Upsample nearest (Resize, asymmetric,
    # floor, scales) and bilinear (Resize linear, pytorch_half_pixel, sizes), Max and Min.
    b = Builder("decoder", 8)
    e = b.op("Relu", [b.conv("input", 3, 8, 3, strides=[2, 2], pads=[1, 1, 1, 1])])  # 8x6 -> 4x3
    up = b.op("ConvTranspose", [e, b.weight(8, 4, 2, 2), b.const(b.rng.uniform(-0.1, 0.1, 4).astype(np.float32))],
              kernel_shape=[2, 2], strides=[2, 2])  # 8x6x4
    near = b.op("Resize", [b.conv(e, 8, 4, 1), "", b.const(np.array([1, 1, 2, 2], np.float32))],
                mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    x = b.op("Max", [up, near, b.conv("input", 3, 4, 1)])
    x = b.op("ConvTranspose", [x, b.weight(4, 5, 3, 3)], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], output_padding=[1, 1])  # 16x12x5
    lin = b.op("Resize", [b.conv("input", 3, 5, 1), "", "", b.const(np.array([2, 5, 16, 12], np.int64))],
               mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
    return b.model((2, 3, 8, 6), b.op("Min", [x, lin]), 13)


def conv_transpose_forms():
    # ConvTranspose's other forms, each to 10x12: grouped (group 2, explicit pads), auto_pad
    # SAME_UPPER and SAME_LOWER with an odd total crop (which side takes the odd one), and
    # output_shape (odd total crop, NOTSET) with output_padding.
    b = Builder("conv_transpose_forms", 9)
    t = lambda w, **a: b.op("ConvTranspose", ["input", w], kernel_shape=[3, 3], strides=[2, 2], **a)
    grouped = b.op("ConvTranspose", ["input", b.weight(4, 3, 3, 3), b.const(b.rng.uniform(-0.1, 0.1, 6).astype(np.float32))],
                   kernel_shape=[3, 3], strides=[2, 2], group=2, pads=[1, 0, 0, 1])
    upper = t(b.weight(4, 6, 3, 3), auto_pad="SAME_UPPER")
    lower = t(b.weight(4, 6, 3, 3), auto_pad="SAME_LOWER")
    shaped = t(b.weight(4, 6, 3, 3), output_shape=[10, 12])
    padded = b.op("ConvTranspose", ["input", b.weight(4, 6, 2, 2)], kernel_shape=[2, 2], strides=[2, 2],
                  output_padding=[1, 1], output_shape=[10, 12])
    x = b.op("Add", [b.op("Max", [grouped, upper]), b.op("Min", [lower, shaped])])
    return b.model((2, 4, 5, 6), b.op("Max", [x, padded]), 13)


MODELS = [conv_bn_gemm, resnet_block, mobilenet_block, inception_block, preprocess, tf2onnx_style,
          flatten_features, decoder, conv_transpose_forms]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "onnx"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for make in MODELS:
        m = make()
        name = m.graph.name
        path = os.path.join(a.out, name + ".onnx")
        if name == "resnet_block":  # initializers in an external data file, as large models are
            if os.path.exists(os.path.join(a.out, name + ".weights")):
                os.remove(os.path.join(a.out, name + ".weights"))  # onnx appends to an existing one
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".weights", size_threshold=256)
        else:
            onnx.save_model(m, path)
        shape = [d.dim_value or 2 for d in m.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(42).uniform(-1, 1, shape).astype(np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        y = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        np.save(os.path.join(a.out, name + ".input.npy"), x)
        np.save(os.path.join(a.out, name + ".output.npy"), y)
        print(f"{name}: input {x.shape}, output {y.shape}, opset {m.opset_import[0].version}")


if __name__ == "__main__":
    main()
