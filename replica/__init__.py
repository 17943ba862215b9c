"""AlexNet as Krizhevsky, Sutskever and Hinton built it (NIPS 2012): two towers on two devices.

The public API: `build_model`, the device helpers, the collapse of the towers into one device's net, and the
per-layer table. Training (`replica.training.train`), data (`replica.inputs.input_pipeline`) and evaluation
(`replica.training.evaluate`) are imported from their modules.
"""
import importlib
import os

# oneDNN's CPU kernels for the convolutions and matmuls. TensorFlow's x86 packages switch them on by themselves only
# on processors with AVX-512 VNNI, AVX-512 BF16 or AMX; elsewhere (an AVX2-only CPU) the convolutions run in Eigen,
# and the towers' float32 step is 1.6x slower (docs/performance.md, `--trial=onednn`). Read once, when TensorFlow
# loads: set here, before any module of the replica imports it. TF_ENABLE_ONEDNN_OPTS=0 still switches them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_EXPORTS = {"AlexNet": "replica.net.model", "build_model": "replica.net.model",
            "collapse_to_merged": "replica.net.collapse", "to_grouped": "replica.net.collapse",
            "copy_weights": "replica.net.collapse", "DeviceError": "replica.net.devices",
            "parse_gpus": "replica.net.devices", "plan_devices": "replica.net.devices",
            "tower_devices": "replica.net.devices", "split_cpu": "replica.net.devices",
            "layer_table": "replica.net.summary", "format_table": "replica.net.summary"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    """The public API and the subpackages, imported when first used: `from replica import config` (the command
    line's flags and their checks) then runs without loading TensorFlow, so a bad flag is refused at once."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    try:
        return importlib.import_module(f"replica.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"replica.{name}":   # the subpackage exists but needs a module that is missing: say so
            raise
        raise AttributeError(f"module 'replica' has no attribute {name!r}") from None
