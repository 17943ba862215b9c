"""Every test process sees the CPU as two logical devices, the simulated pair of GPUs."""
import os
import pathlib
import subprocess
import sys
import tempfile

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


class Background(subprocess.Popen):
    """`python <args>` in the repository, in a process of its own whose output goes to temporary files: a test
    that waits for a checkpoint before reading would otherwise stop the process once a pipe's 64 KB had filled."""

    def __init__(self, args):
        self.files = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        super().__init__([sys.executable, *args], cwd=REPO, text=True, stdout=self.files[0], stderr=self.files[1])

    def output(self):
        """(stdout, stderr) written so far."""
        texts = []
        for f in self.files:
            f.seek(0)
            texts.append(f.read())
        return tuple(texts)

    def communicate(self, input=None, timeout=None):
        """(stdout, stderr) once the process has ended, as Popen's."""
        self.wait(timeout)
        return self.output()
