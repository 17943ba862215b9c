"""Every test process sees the CPU as two logical devices, the simulated pair of GPUs."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from replica import devices  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TWO_DEVICES = devices.split_cpu(2)


@pytest.fixture
def two_devices():
    return list(TWO_DEVICES)


def lively_weights(model, seed=0):
    """Replace the paper's N(0, 0.01) weights by fan-in scaled ones, so every layer's output is far from zero
    and a comparison of logits can fail (with 0.01 the logits of a fresh net are all but constant)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        layer.set_weights([rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32),
                           rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    return model


@pytest.fixture
def op_determinism():
    """TensorFlow's deterministic kernels for one test, switched off again after it (it is process-wide)."""
    from tensorflow.python.framework import config
    config.enable_op_determinism()
    yield
    config.disable_op_determinism()
