#!/usr/bin/env bash
# Optional, idempotent: installs TensorFlow (CPU) + Keras 3 + h5py (+ matplotlib, for the
# benchmark scripts' charts), used only by
# tools/keras_export.py to regenerate the Keras reference data (tests/fixtures/keras/ and the
# model zoo). Not called by setup.sh or CI; the committed fixtures need nothing of this.
set -euo pipefail
PY=${PYTHON:-python3}
export TF_CPP_MIN_LOG_LEVEL=3
$PY -c "import matplotlib" 2>/dev/null || $PY -m pip install -q --disable-pip-version-check matplotlib
if $PY -c "import tensorflow, keras, h5py, sys; sys.exit(0 if tensorflow.__version__.startswith('2.21.') and keras.__version__.startswith('3.') else 1)" 2>/dev/null; then
  echo "setup_keras: tensorflow $($PY -c 'import tensorflow as t; print(t.__version__)' 2>/dev/null) and keras $($PY -c 'import keras; print(keras.__version__)') already installed"
  exit 0
fi
# tensorflow-cpu first (smaller, no CUDA wheels); fall back to tensorflow.
if ! $PY -m pip install -q --disable-pip-version-check "tensorflow-cpu==2.21.*" h5py; then
  echo "setup_keras: tensorflow-cpu failed; trying tensorflow" >&2
  $PY -m pip install -q --disable-pip-version-check "tensorflow==2.21.*" h5py
fi
$PY -c "import tensorflow as tf, keras, h5py; print('setup_keras: tensorflow', tf.__version__, 'keras', keras.__version__, 'h5py', h5py.version.version)"
