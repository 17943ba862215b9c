"""Where a step's time goes on each device: busy and idle time per device, measured by TensorFlow's profiler.

The paper's timing claim (PAPER.md 5, section 3.2: the two-tower net on two GPUs "takes slightly less time to
train" than the one-GPU net) is about the work on each device's critical path; `replica.perf.cost_model` predicts it,
this module measures it. The runtime's own placement (the partition graphs of the compiled step, as
tests/test_devices.py reads them) says which device ran each op; the profiler's trace says when each op ran.

- CPU devices (physical or logical): an op runs inside its executor's host thread, so the host trace's op events
  are the device's work. A device's busy time is the union of its ops' intervals (ops running side by side on the
  same device count once); idle = wall - busy is the time the device waited, for the other tower at an exchange
  point or for the ops that only device 0 runs (fc8, the loss).
- GPUs: the host events are only kernel launches, so a GPU's busy time is the union of the kernels on its
  profiler plane (`/device:GPU:k`, all streams). Logical GPUs carved out of one physical GPU share one plane and
  are reported together under the physical GPU's name. (This branch has not run here: the machine has no GPU.)
"""
import collections
import glob
import os
import tempfile
import time

import tensorflow as tf
from tensorflow.python.eager import context


@tf.function
def _nothing():
    return tf.constant(0)


def run_metadata(function, *args):
    """The runtime's RunMetadata of one call `function(*args)`: the partition graphs of the functions it instantiated
    (which device each node ran on), and only those. The runtime keeps the graphs of a call that raised while they
    were collected and hands them to the next collected call: a call of a function that does nothing takes them out
    first."""
    context.enable_run_metadata()
    try:
        _nothing()
        context.export_run_metadata()   # what an earlier, failed collection left behind
        _wait(function(*args))
        return context.export_run_metadata()
    finally:
        context.disable_run_metadata()


def node_devices(function, *args):
    """{node name: device} of every op of `function`'s partition graphs, from one call made to collect them.

    `function` must be a tf.function not yet run with these argument shapes: the runtime hands out a function's
    partition graphs when it instantiates it."""
    metadata = run_metadata(function, *args)
    return {node.name: node.device
            for graph in metadata.function_graphs for partition in graph.partition_graphs for node in partition.node}


def _wait(outputs):
    """Block until the step's outputs exist (the step is asynchronous on GPUs)."""
    for value in tf.nest.flatten(outputs):
        if isinstance(value, tf.Tensor):
            value.numpy()


def trace(function, args_of_call, calls):
    """Run `function(*args_of_call())` `calls` times under the profiler; return (the trace as an XSpace, wall
    seconds of the calls). The trace's folder is removed once read."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    with tempfile.TemporaryDirectory(prefix="device-time-") as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            start = time.perf_counter()
            for _ in range(calls):
                _wait(function(*args_of_call()))
            wall = time.perf_counter() - start
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0]
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    return space, wall


ASYNC_OP_EVENT = "ExecutorState::ProcessAsync::Start"


def node_name(plane, event):
    """The graph node an event of the host plane ran. A synchronous op's event is named 'node:OpType'; an
    asynchronous one (an XLA-compiled function, such as `optimizer.PaperSGD`'s update) is an executor event that names
    its node in a stat, and on a CPU it lasts as long as the compiled code runs."""
    name = plane.event_metadata[event.metadata_id].name
    if name == ASYNC_OP_EVENT:
        for stat in event.stats:
            if plane.stat_metadata[stat.metadata_id].name == "name" and stat.ref_value:
                return plane.stat_metadata[stat.ref_value].name
    return name.split(":")[0]


def op_type(plane, event):
    """'Conv2DBackpropFilter', ...: the part after the colon of a synchronous op's event name; 'XlaCompiled' for
    an asynchronous op."""
    name = plane.event_metadata[event.metadata_id].name
    return "XlaCompiled" if name == ASYNC_OP_EVENT else name.split(":")[-1]


def op_events(space, devices_of_node):
    """(device, node name, op type, start_ps, end_ps) of every op: CPU ops from the host plane (by node name), GPU
    kernels from each GPU plane (node name and type: the kernel's name)."""
    for plane in space.planes:
        gpu_plane = plane.name.startswith("/device:GPU:")
        for line in plane.lines:
            base = line.timestamp_ns * 1000
            for event in line.events:
                start = base + event.offset_ps
                if gpu_plane:
                    kernel = plane.event_metadata[event.metadata_id].name
                    yield plane.name, kernel, kernel, start, start + event.duration_ps
                    continue
                node = node_name(plane, event)
                device = devices_of_node.get(node)
                if device is not None and "/device:CPU:" in device:
                    yield device, node, op_type(plane, event), start, start + event.duration_ps


def op_intervals(space, devices_of_node):
    """{device: [(start_ps, end_ps), ...]} of every op of the trace."""
    out = collections.defaultdict(list)
    for device, _, _, start, end in op_events(space, devices_of_node):
        out[device].append((start, end))
    return out


def op_seconds(function, args_of_call, calls=2):
    """[(seconds per call, device, node name, op type)] of every op of `function`, costliest first: where a
    step's time goes, op by op. Ops that run side by side on one device share its cores, so each one's time is
    longer than it would be alone (run with one inter-op thread for times that add up to the step)."""
    devices_of_node = node_devices(function, *args_of_call())
    space, _ = trace(function, args_of_call, calls)
    total = collections.Counter()
    for device, node, kind, start, end in op_events(space, devices_of_node):
        total[(device.split("/device:")[-1], node, kind)] += (end - start) / 1e12 / calls
    return sorted(((seconds, *key) for key, seconds in total.items()), reverse=True)


def union_length(intervals):
    """Total length covered by a set of (start, end) intervals, overlaps counted once."""
    total, current = 0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            total += 0 if current is None else current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    return total + (0 if current is None else current[1] - current[0])


def device_times(function, args_of_call, calls=2):
    """Per device: busy seconds per call and the fraction of the call's wall time it waited.

    function: a fresh tf.function (see `node_devices`); args_of_call: () -> its arguments (called once per call,
    so a step can draw new batches). The first call instantiates the function and is not timed."""
    devices_of_node = node_devices(function, *args_of_call())
    space, wall = trace(function, args_of_call, calls)
    per_call = wall / calls
    devices = {}
    for device, intervals in sorted(op_intervals(space, devices_of_node).items()):
        busy = union_length(intervals) / 1e12 / calls
        devices[device.split("/device:")[-1]] = {"busy_seconds": busy, "idle_fraction": max(0.0, 1 - busy / per_call)}
    return {"wall_seconds": per_call, "devices": devices}
