"""The arithmetic a run uses, stated and honoured.

The paper trained in float32 on GTX 580s (PAPER.md 3). Two settings silently run "float32" in less:
- on Ampere and later GPUs TensorFlow runs float32 convolutions and matmuls as TensorFloat-32 (a 10-bit mantissa)
  unless told otherwise;
- on CPUs oneDNN's reduced-precision math mode (`ONEDNN_DEFAULT_FPMATH_MODE`, `TF_SET_ONEDNN_FPMATH_MODE`) runs
  float32 as bfloat16.
So `float32` switches TensorFloat-32 off and refuses a reduced oneDNN math mode; the other modes ask for less on
purpose:

    float32         the paper: float32 everywhere                                     (the default)
    tf32            float32 weights and maps, TensorFloat-32 convolutions and matmuls on GPUs that have it
    mixed_bfloat16  float32 weights; bfloat16 convolutions, matmuls and exchanges; LRN arithmetic, softmax and
                    loss float32 (the LRN's sums over adjacent maps by bfloat16 matmuls, which add in float32)
    mixed_float16   as mixed_bfloat16 with float16 maps and dynamic loss scaling (`LossScale`), for GPUs
                    without bfloat16 (V100, T4)
"""
import os

import tensorflow as tf
from absl import logging

from replica import choices
from replica.errors import UserError

MODES = choices.PRECISIONS
ONEDNN_FPMATH_VARIABLES = ("ONEDNN_DEFAULT_FPMATH_MODE", "TF_SET_ONEDNN_FPMATH_MODE")
STRICT_FPMATH = ("", "STRICT", "F32")
# The CPU features whose units compute a mode's reduced dtype (Linux's names): x86's AVX-512 BF16 and AMX, Arm's
# BF16. Without them oneDNN has no bfloat16 convolutions and TensorFlow emulates them, many times slower than
# float32. float16 on CPUs is not listed: its speed there has not been measured.
CPU_UNITS = {"mixed_bfloat16": ("avx512_bf16", "amx_bf16", "bf16")}


class PrecisionError(UserError, ValueError):
    """A precision mode that does not exist, or a setting that would break the one asked for."""


def check_mode(mode):
    if mode not in MODES:
        raise PrecisionError(f"--precision={mode} is not one of {', '.join(MODES)}")


def layer_policy(mode):
    """The Keras dtype policy of the layers: variables float32 in every mode."""
    check_mode(mode)
    return {"float32": "float32", "tf32": "float32"}.get(mode, mode)


def compute_dtype(mode):
    return {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}.get(mode, tf.float32)


def reduced_onednn_math(environ=os.environ):
    """The oneDNN math-mode variables set to anything but strict float32, as 'NAME=value' strings."""
    return [f"{name}={environ[name]}" for name in ONEDNN_FPMATH_VARIABLES
            if environ.get(name, "").strip().upper() not in STRICT_FPMATH]


def configure(mode, environ=os.environ):
    """Make the runtime compute what `mode` says (call before building the model); returns a one-line
    description of what is in force, which the log, results.json and the benchmark record."""
    check_mode(mode)
    reduced = reduced_onednn_math(environ)
    if mode in ("float32", "tf32") and reduced:
        raise PrecisionError(f"{', '.join(reduced)} runs float32 as bfloat16 on this CPU; unset it for "
                             f"--precision={mode}, or pass --precision=mixed_bfloat16")
    tf.config.experimental.enable_tensor_float_32_execution(mode == "tf32")
    described = in_force(mode, environ)
    logging.info("precision: %s", described)
    if onednn_in_use() is False and not tf.config.list_physical_devices("GPU"):
        logging.warning("oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0, or TensorFlow was imported before replica): the "
                        "convolutions run in Eigen, 1.6x slower for the towers on an AVX2 CPU")
    if emulated(mode):
        logging.warning("--precision=%s on this CPU is emulated, many times slower than float32 (it has none of %s); "
                        "--precision=float32 is faster here", mode, ", ".join(CPU_UNITS[mode]))
    return described


def in_force(mode, environ=os.environ, flags=None):
    """What the runtime computes in `mode`, as configured now (`flags`: the CPU's, read from the machine if None)."""
    tf32 = "on" if tf.config.experimental.tensor_float_32_execution_enabled() else "off"
    onednn = ", ".join(reduced_onednn_math(environ)) or "strict"
    kernels = f"oneDNN math {onednn}" if onednn_in_use() is not False else "oneDNN off: Eigen kernels"
    units = ", emulated on this CPU" if emulated(mode, flags) else ""
    return f"{mode} (TensorFloat-32 {tf32}, {kernels}{units})"


def onednn_in_use():
    """Whether TensorFlow runs the CPU's convolutions and matmuls in oneDNN: fixed when TensorFlow loaded, by
    TF_ENABLE_ONEDNN_OPTS (replica/__init__.py sets it to 1 unless it was set) and the processor. None where
    TensorFlow does not say."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def emulated(mode, flags=None):
    """Whether `mode`'s reduced dtype runs without arithmetic units for it: on a machine without GPUs whose CPU has
    none of CPU_UNITS[mode]. (On GPUs the devices' compute capability decides; experiments/device_check.py
    reports it.)"""
    if mode not in CPU_UNITS or tf.config.list_physical_devices("GPU"):
        return False
    return not set(CPU_UNITS[mode]) & set(cpu_flags() if flags is None else flags)


def modes_with_units(gpu_capabilities, flags=None):
    """The precision modes this machine has arithmetic units for, float32 first: on GPUs (`gpu_capabilities`, their
    compute capabilities; the lowest decides) mixed_bfloat16 from 8.0 and mixed_float16 from 7.0; on a machine
    without GPUs mixed_bfloat16 where the CPU has units for it (CPU_UNITS)."""
    modes = ["float32"]
    if gpu_capabilities:
        lowest = min(tuple(c) for c in gpu_capabilities)
        return modes + ["mixed_bfloat16"] * (lowest >= (8, 0)) + ["mixed_float16"] * (lowest >= (7, 0))
    return modes + [mode for mode in CPU_UNITS if not emulated(mode, flags)]


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The processor's feature flags as Linux lists them (x86's `flags`, Arm's `Features`); [] where it does not."""
    try:
        with open(cpuinfo) as f:
            return next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return []


class LossScale:
    """Dynamic loss scaling for float16 maps (Micikevicius et al. 2018, as Keras' LossScaleOptimizer does it):
    the loss is multiplied by `scale` before the gradients are taken and the gradients divided by it after. A step
    whose gradients overflow (are not finite while the loss is) is skipped, counted, and halves the scale; after
    `growth_interval` good steps in a row the scale doubles. Its state is checkpointed with the run."""

    def __init__(self, initial=2.0 ** 15, growth_interval=2000):
        self.growth_interval = growth_interval
        self.scale = tf.Variable(initial, dtype=tf.float32, trainable=False, name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="loss_scale_good_steps")
        self.overflows = tf.Variable(0, dtype=tf.int64, trainable=False, name="loss_scale_overflows")

    def trackables(self):
        return {"loss_scale": self.scale, "loss_scale_good_steps": self.good_steps,
                "loss_scale_overflows": self.overflows}

    def update(self, grads_finite):
        """After a step: adjust the scale (in a tf.function, `grads_finite` a boolean tensor)."""
        def overflow():
            self.scale.assign(tf.maximum(self.scale / 2.0, 1.0))
            self.good_steps.assign(0)
            self.overflows.assign_add(1)
            return tf.constant(0)

        def good():
            grown = self.good_steps + 1 >= self.growth_interval
            self.scale.assign(tf.where(grown, self.scale * 2.0, self.scale))
            self.good_steps.assign(tf.where(grown, tf.constant(0, tf.int64), self.good_steps + 1))
            return tf.constant(0)

        return tf.cond(grads_finite, good, overflow)
