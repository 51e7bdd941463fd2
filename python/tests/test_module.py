"""The Python module against the command line: the same network, weights and input give the
same outputs as `cnnc run`; errors are cnnc.Error with cnnc's message. Runs from the build tree
(ctest python_module: PYTHONPATH=build/python) or after `pip install .`."""
import os
import subprocess

import numpy as np
import pytest

import cnnc

SRC = os.path.join(os.path.dirname(__file__), "..", "..")
MODELS = os.path.join(SRC, "models")
CNNC = os.environ.get("CNNC_BINARY", os.path.join(SRC, "build", "cnnc"))


def test_compiled_network_matches_cnnc_run(tmp_path):
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    net = cnnc.compile(os.path.join(MODELS, "resnet_mini.cnn"), batch=2, seed=4)
    assert net.input_shapes == [(2, 32, 32, 3)] and net.output_shapes == [(2, 10)]
    y = net(x)
    assert y.shape == (2, 10) and y.dtype == np.float32
    np.save(tmp_path / "x.npy", x)
    subprocess.run([CNNC, "run", os.path.join(MODELS, "resnet_mini.cnn"), "--seed", "4",
                    "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")],
                   check=True, capture_output=True)
    np.testing.assert_allclose(y, np.load(tmp_path / "y.npy"), rtol=0, atol=1e-6)
    # Rows are probability distributions (the network ends in softmax).
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_an_onnx_model_takes_and_gives_nchw_as_onnx_runtime_does():
    fx = os.path.join(SRC, "tests", "fixtures", "onnx")
    x = np.load(os.path.join(fx, "resnet_block.input.npy"))  # N x C x H x W, as ONNX Runtime took it
    net = cnnc.compile(os.path.join(fx, "resnet_block.onnx"), batch=x.shape[0])
    assert net.input_shapes == [x.shape]
    want = np.load(os.path.join(fx, "resnet_block.output.npy"))
    np.testing.assert_allclose(net(x), want, rtol=0, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_summary_and_bench():
    net = cnnc.compile(os.path.join(MODELS, "lenet5.cnn"))
    net(np.zeros((1, 32, 32, 1), np.float32))
    assert "c1 (conv2d) 1x28x28x6: schedule=" in net.summary()
    b = net.bench(runs=5)
    assert b["runs"] == 5 and 0 < b["min_ms"] <= b["median_ms"] and b["images_per_s"] > 0


def test_opencl_target_gives_the_hosts_outputs():
    x = np.random.default_rng(2).random((1, 32, 32, 1), dtype=np.float32)
    host = cnnc.compile(os.path.join(MODELS, "lenet5.cnn"), seed=3)(x)
    gpu = cnnc.compile(os.path.join(MODELS, "lenet5.cnn"), seed=3, target="opencl")(x)
    np.testing.assert_allclose(gpu, host, rtol=0, atol=1e-6)


def test_errors_are_cnnc_errors_with_cnnc_messages(tmp_path):
    with pytest.raises(cnnc.Error, match="no such file"):
        cnnc.compile(tmp_path / "missing.cnn")
    bad = tmp_path / "bad.cnn"
    bad.write_text("input x shape=8x8x3\nconv2d c filters=4 kernel=9x9\n")
    with pytest.raises(cnnc.Error, match="bad.cnn:2"):
        cnnc.compile(bad)
    net = cnnc.compile(os.path.join(MODELS, "lenet5.cnn"))
    with pytest.raises(cnnc.Error, match="input has shape 1x8x8x1"):
        net(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(cnnc.Error, match="unknown target 'z80'"):
        cnnc.compile(os.path.join(MODELS, "lenet5.cnn"), target="z80")
    with pytest.raises(cnnc.Error, match="not int"):
        cnnc.compile(42)


def test_a_live_keras_model_matches_predict():
    keras = pytest.importorskip("keras", reason="Keras is optional (tools/setup_keras.sh)")
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(h))
    x = np.random.default_rng(3).random((4, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(cnnc.compile(model, batch=4)(x), model.predict(x, verbose=0),
                               rtol=0, atol=1e-4)


def test_tune_records_what_compile_then_uses(tmp_path):
    net = tmp_path / "one.cnn"
    net.write_text("input x shape=12x12x16\nconv2d c filters=32 kernel=3x3 padding=same activation=relu\n"
                   "maxpool2d p pool=2x2\n")
    db = tmp_path / "t.db"
    workloads = cnnc.tune(net, budget="6s", db=db, threads=2)
    assert [w["layers"] for w in workloads] == [["c"], ["p"]]
    assert all(w["trials"] >= 1 and w["best_ms"] > 0 and w["heuristic_ms"] > 0 for w in workloads)
    assert db.exists()
    x = np.random.default_rng(4).random((1, 12, 12, 16), dtype=np.float32)
    tuned, plain = cnnc.compile(net, db=db, threads=2), cnnc.compile(net, tuning=False)
    np.testing.assert_allclose(tuned(x), plain(x), rtol=0, atol=1e-5)
    # The conv runs the schedule the tuner found best (or confirmed), the plain one the heuristic.
    assert f"c (conv2d) 1x12x12x32: schedule={workloads[0]['best']}," in tuned.summary()
    assert f"c (conv2d) 1x12x12x32: schedule={workloads[0]['heuristic']}," in plain.summary()
    with pytest.raises(cnnc.Error, match="give a duration like 90s"):
        cnnc.tune(net, budget="soon", db=db)
