"""Every test process sees the CPU as two logical devices, the simulated pair of GPUs."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from replica.net import devices  # noqa: E402
from replica.net.collapse import lively_weights  # noqa: E402, F401  (tests import it from here)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TWO_DEVICES = devices.split_cpu(2)


@pytest.fixture
def two_devices():
    return list(TWO_DEVICES)


@pytest.fixture
def op_determinism():
    """TensorFlow's deterministic kernels for one test, switched off again after it (it is process-wide)."""
    from tensorflow.python.framework import config
    config.enable_op_determinism()
    yield
    config.disable_op_determinism()
