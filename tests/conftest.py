"""What every test process shares: the CPU as two logical devices (the simulated pair of GPUs), its folders on the
RAM filesystem, one XLA compile cache for the run, and helpers for the tests' background processes."""
import atexit
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

# TensorFlow's C++ log: fatal lines only. Its errors reach the tests as Python exceptions; what it logs besides is
# noise here, above all an error line per function loaded from the compile cache below about CPU features that XLA
# compares by name ("+prefer-no-scatter is not supported on the host machine"), even on the machine that compiled it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_test_files_to_memory(folder="/dev/shm", room_gb=8):
    """The tests' folders (tmp_path, tempfile, the processes they start) on the RAM filesystem when it has room: the
    tests write full checkpoints (about 290 MB each for the 32x32 net, several GB over the run), whose disk writes
    were most of the suite's system time and waits. Unless TMPDIR is set already (by whoever runs the tests, or in a
    worker by the main pytest process). pytest removes its folders when every test passes, as on disk."""
    if "TMPDIR" in os.environ or not os.access(folder, os.W_OK) or shutil.disk_usage(folder).free < room_gb * 2 ** 30:
        return
    tests_folder = pathlib.Path(folder) / f"replica-tests-{os.getuid()}"
    tests_folder.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tests_folder)
    tempfile.tempdir = None   # tempfile reads TMPDIR again


write_test_files_to_memory()


def share_one_xla_compile_cache():
    """One on-disk cache of XLA's compiled functions (the LRN's passes, the update, the photos' device pass) for the
    whole test run: its workers and the ~50 processes its tests start compile each function once per run rather than
    once per process. Only the compilation is cached, keyed by the function's graph: the code that runs is the same.
    The main pytest process makes the folder and removes it at exit; its workers and their processes inherit it."""
    if "TF_XLA_FLAGS" in os.environ:   # a worker (the main process set it), or flags chosen by whoever runs the tests
        return
    folder = tempfile.mkdtemp(prefix="replica-tests-xla-cache-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={folder}"


share_one_xla_compile_cache()

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


def run_script(name, *args, timeout=240):
    """Run experiments/<name>.py in a process of its own from the repository; assert it succeeded."""
    result = subprocess.run([sys.executable, f"experiments/{name}.py", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker more than the cores this process may use. Much of a test's time is waiting (a process
    starting, a peer's timeout, a checkpoint polled for), which the extra worker fills."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def float32_where_bfloat16_is_emulated():
    """--precision=float32 on a CPU without bfloat16 units, where mixed bfloat16 is emulated and many times slower:
    what these tests check is the scripts' bookkeeping, which does not depend on the precision (the bfloat16 net
    itself is tested in test_precision.py and test_equivalence.py)."""
    from replica.net import precision
    return ["--precision=float32"] if precision.emulated("mixed_bfloat16") else []


# The files whose tests take longest (each is one worker's unit under --dist loadfile), longest first: sent to the
# workers before the short files (setup.cfg's --no-loadscope-reorder keeps this order), they do not leave one worker
# busy at the end while the others wait. The order is that of the files' summed durations in a run of the whole suite
# (PYTEST_ADDOPTS=--durations=0).
LONGEST_FILES = ("test_train.py", "test_experiments.py", "test_faults.py", "test_speed.py", "test_serving.py",
                 "test_pretrained.py", "test_distributed.py", "test_variants.py", "test_gpu_path.py")


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: each file's own order is kept


@pytest.fixture(autouse=True)
def custom_gradients_released():
    """Each test's nets are freed when it ends (a worker otherwise grew by 10 GB over the suite)."""
    from replica.net import speed_forms
    with speed_forms.custom_gradients_released():
        yield
