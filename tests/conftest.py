"""Every test process sees the CPU as two logical devices, the simulated pair of GPUs."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _xla_cache_for_this_test_run():
    """One on-disk cache of XLA's compiled functions (the LRN's passes, the update, the photos' device pass) shared by
    the test run's workers and the ~50 processes its tests start, so that each compiles once per run rather than
    once per process. Only the compilation is cached, keyed by the function's graph: the code that runs is the same.
    A fresh folder per test run (pytest-xdist names the run), so nothing carries over between runs."""
    import tempfile
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    folder = pathlib.Path(tempfile.gettempdir()) / f"replica-tests-xla-cache-{run}"
    folder.mkdir(parents=True, exist_ok=True)
    return f"--tf_xla_persistent_cache_directory={folder}"


if "TF_XLA_FLAGS" not in os.environ:
    os.environ["TF_XLA_FLAGS"] = _xla_cache_for_this_test_run()

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
