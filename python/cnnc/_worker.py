"""The tuner's measuring process (python -m cnnc._worker): cnnc.tune starts it and sends it
candidate schedules as JSON lines; a candidate that crashes or hangs it costs one trial."""
import sys

from . import _cnnc

if __name__ == "__main__":
    sys.exit(_cnnc.serve_worker())
