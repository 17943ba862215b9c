"""One device per tower: physical GPUs when there are enough, else logical devices carved out of what exists.

The paper put each tower on its own GTX 580 (PAPER.md 1). Here `--gpus=0,1` names the devices; with fewer
physical GPUs than named, one GPU (or, with no GPU, the CPU) is split into logical devices before TensorFlow
starts, so the same code path runs with physical and simulated devices.
"""
import dataclasses
import subprocess

import tensorflow as tf
from absl import logging

from replica import choices
from replica.errors import UserError


class DeviceError(UserError, ValueError):
    """A device list that cannot be satisfied on this machine (the message says what to do)."""


def parse_gpus(text):
    """'0,1' -> [0, 1]; a malformed or repeated list is a DeviceError."""
    try:
        return choices.parse_gpus(text)
    except ValueError as e:
        raise DeviceError(str(e)) from None


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """Where the towers go: `names[i]` is tower i's device; `carve` logical devices are split out of the first
    physical device of `kind` (physical GPU 0, or the CPU)."""
    names: tuple
    kind: str            # "GPU" or "CPU"
    carve: int = 0       # how many logical devices to create (0: use physical devices as they are)

    def describe(self):
        if self.carve:
            what = "physical GPU 0" if self.kind == "GPU" else "the CPU"
            return f"simulating {self.carve} devices by splitting {what} into logical devices: {list(self.names)}"
        return f"towers on physical devices {list(self.names)}"


def plan_devices(towers, gpu_ids, physical_gpus):
    """Decide the device of each tower; a request that cannot exist is a DeviceError.

    towers: 2, 1, "merged" or "grouped"; gpu_ids: indices from --gpus; physical_gpus: how many GPUs exist.
    Two towers take one or two devices (one device runs both towers); the single-device nets take one.
    """
    problem = choices.too_many_devices(towers, gpu_ids)
    if problem:
        raise DeviceError(problem)
    n = choices.devices_for(towers)
    if physical_gpus >= len(gpu_ids):
        missing = [i for i in gpu_ids if i >= physical_gpus]
        if missing:
            raise DeviceError(f"GPU {missing[0]} does not exist: this machine has {physical_gpus} GPU(s), "
                              f"numbered 0..{physical_gpus - 1}")
        names = tuple(f"/device:GPU:{i}" for i in gpu_ids)
        return DevicePlan(names * n if len(names) == 1 else names, "GPU")
    # Fewer physical devices than asked for: carve logical devices numbered 0..k-1.
    if sorted(gpu_ids) != list(range(len(gpu_ids))):
        have = f"{physical_gpus} GPU(s)" if physical_gpus else "no GPU"
        raise DeviceError(f"--gpus={','.join(map(str, gpu_ids))} cannot exist: this machine has {have}, so the "
                          f"towers run on simulated devices numbered 0..{len(gpu_ids) - 1}")
    kind = "GPU" if physical_gpus else "CPU"
    names = tuple(f"/device:{kind}:{i}" for i in gpu_ids)
    carve = len(gpu_ids) if len(gpu_ids) > 1 else 0
    return DevicePlan(names * n if len(names) == 1 else names, kind, carve=carve)


DEFAULT_SPLIT_GPU_MB = 5120   # per logical device when a GPU's memory cannot be read: two fit a 12 GB card
SPLIT_HEADROOM_MB = 1024      # left to the CUDA context, cuDNN's workspaces and the runtime when a GPU is split


def card_memory_mb(index, query=None):
    """Total memory of physical GPU `index` in MB, or None when it cannot be read. TensorFlow reports a GPU's
    memory only once its runtime has started, too late to split it, so this asks the driver (nvidia-smi)."""
    try:
        return int(float((query or _nvidia_smi_memory)(index)))
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def _nvidia_smi_memory(index):
    command = ["nvidia-smi", f"--id={index}", "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip().splitlines()[0]


_carved_limits_mb = {}   # logical GPU device name -> the memory limit it was created with


def device_memory_mb(name):
    """The memory a GPU tower device can use in MB (a logical device's limit, or the card's memory less the
    headroom); None for a CPU device or a card whose memory cannot be read."""
    if "GPU" not in name:
        return None
    if name in _carved_limits_mb:
        return _carved_limits_mb[name]
    total = card_memory_mb(int(name.rsplit(":", 1)[1]))
    return total - max(SPLIT_HEADROOM_MB, total // 10) if total else None


def split_memory_mb(total_mb, parts):
    """Each logical device's memory limit when a GPU of `total_mb` is split into `parts`: what is left after the
    headroom (1 GB or a tenth of the card, whichever is more), shared evenly; DEFAULT_SPLIT_GPU_MB when the card's
    memory is unknown."""
    if not total_mb:
        return DEFAULT_SPLIT_GPU_MB
    return max(256, (total_mb - max(SPLIT_HEADROOM_MB, total_mb // 10)) // parts)


def carved_memory_mb(plan, gpu_memory_mb=None, query=None):
    """The memory limit of each logical device the plan carves out of GPU 0: --gpu_memory_mb, else the card's
    memory split with headroom (split_memory_mb); None for devices carved out of the CPU."""
    if plan.kind != "GPU":
        return None
    return gpu_memory_mb or split_memory_mb(card_memory_mb(0, query), plan.carve)


def apply_plan(plan, gpu_memory_mb=None, verify=True):
    """Create the plan's logical devices (before TensorFlow starts) and return the tower device names.

    When TensorFlow has already started (a second model in one process), the existing logical devices are
    reused if there are enough of them. verify=False leaves TensorFlow's runtime unstarted (a multi-worker
    strategy must be created first); the devices are then checked when the model is built.
    """
    if plan.carve:
        physical = tf.config.list_physical_devices(plan.kind)[0]
        limit = carved_memory_mb(plan, gpu_memory_mb)
        config = [tf.config.LogicalDeviceConfiguration(memory_limit=limit)] * plan.carve
        try:
            tf.config.set_logical_device_configuration(physical, config)
            if plan.kind == "CPU":
                share_cores(plan.carve)   # CPU only: each simulated device's thread pool
            else:
                _carved_limits_mb.update({name: limit for name in plan.names})
            logging.info(plan.describe() + (f", {limit} MB each" if limit else ""))
        except RuntimeError:
            pass  # TensorFlow has started; check below that what exists is enough
    if not verify:
        return list(plan.names)
    logical = {d.name for d in tf.config.list_logical_devices(plan.kind)}
    for name in plan.names:
        if name not in logical:
            raise DeviceError(f"device {name} is not available (TensorFlow started with {sorted(logical)}); "
                              "configure devices before building any model")
    return list(plan.names)


def share_cores(devices, cores=None):
    """Give each simulated CPU device its share of the cores: the towers run side by side, each op on
    cores / devices threads, oneDNN's OpenMP pool included. Must run before TensorFlow starts. `cores` (default:
    all of them) lets a benchmark simulate devices of fewer cores. CPU only: GPUs have their own streams
    (docs/performance.md)."""
    import os
    cores = cores or os.cpu_count() or 1
    per_device = max(1, cores // devices)
    os.environ.setdefault("OMP_NUM_THREADS", str(per_device))   # oneDNN's pool: not reached by the API below
    tf.config.threading.set_intra_op_parallelism_threads(per_device)
    tf.config.threading.set_inter_op_parallelism_threads(devices)


def tower_devices(towers=2, gpus="0,1", gpu_memory_mb=None, verify=True):
    """The device name of each tower for `--towers` and `--gpus`, carving logical devices when needed."""
    ids = gpus if isinstance(gpus, (list, tuple)) else parse_gpus(gpus)
    plan = plan_devices(towers, ids, len(tf.config.list_physical_devices("GPU")))
    return apply_plan(plan, gpu_memory_mb, verify)


def split_cpu(count=2):
    """Split the CPU into `count` logical devices (tests and benchmarks); a no-op once TensorFlow has started."""
    return apply_plan(DevicePlan(tuple(f"/device:CPU:{i}" for i in range(count)), "CPU", carve=count))
