"""AlexNet as Krizhevsky, Sutskever and Hinton built it (NIPS 2012): two towers on two devices.

The public API: `build_model`, the device helpers, the collapse of the towers into one device's net, and the
per-layer table. Training (`replica.training.train`), data (`replica.inputs.input_pipeline`) and evaluation
(`replica.training.evaluate`) are imported from their modules.
"""
from replica.net.collapse import collapse_to_merged, copy_weights, to_grouped
from replica.net.devices import DeviceError, parse_gpus, plan_devices, split_cpu, tower_devices
from replica.net.model import AlexNet, build_model
from replica.net.summary import format_table, layer_table

__all__ = ["AlexNet", "build_model", "collapse_to_merged", "to_grouped", "copy_weights", "DeviceError",
           "parse_gpus", "plan_devices", "tower_devices", "split_cpu", "layer_table", "format_table"]
