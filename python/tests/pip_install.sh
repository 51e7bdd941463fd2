#!/usr/bin/env bash
# `pip install .` as a user runs it (into a scratch folder, with this environment's halide,
# pybind11 and cmake), then the module's tests against what it installed.
#   pip_install.sh PYTHON SOURCE_DIR CNNC_BINARY
set -eu
PY=$1 SRC=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_pip.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
  --target "$T/site" "$SRC" 2>&1 | grep -v "Running pip as the 'root' user" || true
[[ -f $T/site/cnnc/__init__.py ]] || { echo "pip install . installed no cnnc package"; exit 1; }
cd "$T"
PYTHONPATH="$T/site" CNNC_BINARY=$3 "$PY" -m pytest -q -p no:cacheprovider "$SRC/python/tests"
