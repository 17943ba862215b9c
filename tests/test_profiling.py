"""Per-device busy time: the profiler's op intervals, attributed to the device the runtime placed each op on."""
import pytest
import tensorflow as tf

import replica
from replica.perf import profiling
from replica.training.optimizer import PaperSGD
from replica.training.step import make_train_step


def test_union_counts_overlapping_intervals_once():
    assert profiling.union_length([(0, 10), (5, 12), (20, 25), (21, 22)]) == 17
    assert profiling.union_length([]) == 0


def test_the_busier_device_is_found_busier(two_devices):
    """Device 0 multiplies 1024^2 matrices, device 1 matrices 64x smaller in work: a mix-up of the devices, or of
    the ops attributed to them, shows as device 1 busier or as one device missing."""
    big, small = (tf.random.normal([n, n]) for n in (1024, 256))

    @tf.function
    def unequal():
        with tf.device(two_devices[0]):
            a = tf.reduce_sum(tf.matmul(tf.matmul(big, big), big))
        with tf.device(two_devices[1]):
            b = tf.reduce_sum(tf.matmul(tf.matmul(small, small), small))
        return a + b

    times = profiling.device_times(unequal, lambda: (), calls=3)
    busy = {d: t["busy_seconds"] for d, t in times["devices"].items()}
    assert set(busy) == {"CPU:0", "CPU:1"}
    assert busy["CPU:0"] > 3 * busy["CPU:1"] > 0
    assert busy["CPU:0"] <= 1.02 * times["wall_seconds"]
    assert times["devices"]["CPU:1"]["idle_fraction"] > times["devices"]["CPU:0"]["idle_fraction"]


def test_a_training_step_keeps_both_devices_busy(two_devices):
    """The towers' step on two devices: each device busy for most of the step (the towers are the same size), and
    the same towers on one device put all the work on that device."""
    def step_times(devices):
        model = replica.build_model(2, num_classes=10, input_size=32, devices=devices)
        step = make_train_step(model, PaperSGD(model.trainable_variables))
        x, y = tf.random.normal([64, 32, 32, 3], stddev=50.0), tf.zeros([64], tf.int64)
        return profiling.device_times(step, lambda: (x, y, tf.constant(0, tf.int64), tf.constant(1e-5)), calls=2)

    two = step_times(two_devices)
    assert set(two["devices"]) == {"CPU:0", "CPU:1"}
    for device in two["devices"].values():
        assert 0.5 * two["wall_seconds"] < device["busy_seconds"] <= 1.02 * two["wall_seconds"]
    one = step_times([two_devices[0]] * 2)
    assert set(one["devices"]) == {"CPU:0"}


def test_compiled_functions_count_on_their_device(two_devices):
    """An XLA-compiled function (as the optimizer's update is) runs as one asynchronous op whose event does not
    carry the node's name: its time must still count as its device's busy time, and show in the op table."""
    x = tf.random.normal([768, 768])

    @tf.function(jit_compile=True)
    def chain(a):
        for _ in range(6):
            a = tf.tanh(tf.matmul(a, a) / 768.0)
        return tf.reduce_sum(a)

    @tf.function
    def compiled_on_device_1():
        with tf.device(two_devices[1]):
            return chain(x)

    times = profiling.device_times(compiled_on_device_1, lambda: (), calls=3)
    assert times["devices"]["CPU:1"]["busy_seconds"] > 0.5 * times["wall_seconds"]
    compiled_on_device_1 = tf.function(compiled_on_device_1.python_function)   # fresh, see node_devices
    ops = profiling.op_seconds(compiled_on_device_1, lambda: (), calls=2)
    seconds, device, _, kind = ops[0]   # the costliest op
    assert (device, kind) == ("CPU:1", "XlaCompiled") and seconds > 0


def test_a_collection_whose_call_failed_leaves_nothing_for_the_next():
    """run_metadata reports only its own call's graphs: the runtime hands the graphs of a call that raised to the
    next collection, where a placement check would read them as its own (another net's ops on another device)."""
    @tf.function
    def failing():
        return tf.debugging.check_numerics(tf.constant(float("nan")) * 2.0, "failed_on_purpose")

    @tf.function
    def fine():
        return tf.constant(1.0) + 1.0

    with pytest.raises(tf.errors.InvalidArgumentError):
        profiling.run_metadata(failing)
    names = {node.name for graph in profiling.run_metadata(fine).function_graphs
             for partition in graph.partition_graphs for node in partition.node}
    assert names and not any("CheckNumerics" in name for name in names), names
