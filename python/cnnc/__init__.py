"""cnnc: a compiler for convolutional networks, from Python.

    import cnnc
    net = cnnc.compile("model.keras")            # or a .cnn/.h5/.json file, or a live Keras model
    y = net(x)                                   # x: numpy float32, batch first, channels last
    print(net.summary()); print(net.bench())

Errors in the model or its inputs raise cnnc.Error with cnnc's message.
"""
import os
import tempfile

import halide  # noqa: F401  (loads libHalide, which the extension links, from the wheel)

from ._cnnc import Compiled, Error  # noqa: F401
from . import _cnnc

__all__ = ["compile", "load", "Compiled", "Error"]


def _is_keras_model(obj):
    return hasattr(obj, "save") and hasattr(obj, "layers") and hasattr(obj, "inputs")


def compile(model, *, batch=1, target="host", weights=None, seed=0, threads=0):
    """Compiles `model` for `target` ("host", a CPU target string, "opencl", "cuda:sm_90").

    model: a path (.cnn, .keras, .h5, .json) or a Keras model object (its weights are used).
    batch: the batch the compiled network takes. weights: a .cnnw file for a .cnn network (else
    Glorot-initialised from `seed`, as `cnnc run` does). threads: 0 for one per core.
    """
    if _is_keras_model(model):
        with tempfile.TemporaryDirectory(prefix="cnnc-") as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            return _cnnc.compile(path, batch, target, "", seed, threads)
    if not isinstance(model, (str, os.PathLike)):
        raise Error(f"cnnc.compile takes a model file path or a Keras model, not {type(model).__name__}")
    return _cnnc.compile(os.fspath(model), batch, target, weights or "", seed, threads)


def load(path, **kwargs):
    """Same as compile(path, ...): a network file, compiled for the host unless target= says."""
    return compile(path, **kwargs)
