"""cnnc: a compiler for convolutional networks, from Python.

    import cnnc
    net = cnnc.compile("model.keras")            # or a .cnn/.h5/.json file, or a live Keras model
    y = net(x)                                   # x: numpy float32, batch first, channels last
    print(net.summary()); print(net.bench())

Errors in the model or its inputs raise cnnc.Error with cnnc's message.
"""
import os
import sys
import tempfile

import halide  # noqa: F401  (loads libHalide, which the extension links, from the wheel)

from ._cnnc import Compiled, Error  # noqa: F401
from . import _cnnc

__all__ = ["compile", "load", "tune", "Compiled", "Error"]


def _is_keras_model(obj):
    return hasattr(obj, "save") and hasattr(obj, "layers") and hasattr(obj, "inputs")


def _options(batch, target, weights, seed, threads, db):
    o = _cnnc.Options()
    o.batch, o.target, o.weights, o.seed, o.threads = batch, target, weights or "", seed, threads
    o.db = os.fspath(db) if db else ""
    return o


def _path(model):
    if not isinstance(model, (str, os.PathLike)):
        raise Error(f"cnnc takes a model file path or a Keras model, not {type(model).__name__}")
    return os.fspath(model)


def compile(model, *, batch=1, target="host", weights=None, seed=0, threads=0, db=None,
            tuning=True):
    """Compiles `model` for `target` ("host", a CPU target string, "opencl", "cuda:sm_90").

    model: a path (.cnn, .keras, .h5, .json) or a Keras model object (its weights are used).
    batch: the batch the compiled network takes. weights: a .cnnw file for a .cnn network (else
    Glorot-initialised from `seed`, as `cnnc run` does). threads: 0 for one per core.
    Kernels take the tuning database's best schedules for this machine (`db`, default the
    user's cache; tuning=False: the tiling pass's), as `cnnc run` does.
    """
    options = _options(batch, target, weights, seed, threads, db)
    if _is_keras_model(model):
        with tempfile.TemporaryDirectory(prefix="cnnc-") as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            return _cnnc.compile(path, options, tuning)
    return _cnnc.compile(_path(model), options, tuning)


def tune(model, *, budget="15m", batch=1, target="host", seed=0, threads=0, db=None):
    """Searches each kernel's schedule on this machine for `budget` ("90s", "15m", "1h", or
    seconds) and records the best in the tuning database (`db`, default the user's cache), as
    `cnnc tune` does; compile() then uses them. Returns one dict per workload: its layers, the
    heuristic's and the best schedule with their times (ms), and the trials."""
    seconds = _seconds(budget)
    options = _options(batch, target, None, seed, threads, db)
    worker = [sys.executable, "-m", "cnnc._worker"]
    if _is_keras_model(model):
        with tempfile.TemporaryDirectory(prefix="cnnc-") as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            return _cnnc.tune(path, seconds, options, worker)
    return _cnnc.tune(_path(model), seconds, options, worker)


def _seconds(budget):
    if isinstance(budget, (int, float)):
        return float(budget)
    units = {"s": 1, "m": 60, "h": 3600}
    text = str(budget).strip()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        raise Error(f"budget {budget!r}: give a duration like 90s, 15m or 1h") from None


def load(path, **kwargs):
    """Same as compile(path, ...): a network file, compiled for the host unless target= says."""
    return compile(path, **kwargs)
