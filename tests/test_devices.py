"""Placement: every variable and op of tower i on device i, read from where they actually ran."""
import re

import pytest
import tensorflow as tf

import replica
from replica.net import model as model_lib
from replica.net.devices import DeviceError, parse_gpus, plan_devices
from replica.perf import profiling


def test_parse_gpus():
    assert parse_gpus("0,1") == [0, 1]
    for bad in ("0,,1", "a", "0,0", "-1", ""):
        with pytest.raises(DeviceError):
            parse_gpus(bad)


def test_plans():
    assert plan_devices(2, [0, 1], physical_gpus=2).names == ("/device:GPU:0", "/device:GPU:1")
    assert plan_devices(2, [1, 0], physical_gpus=4).names == ("/device:GPU:1", "/device:GPU:0")
    one_gpu = plan_devices(2, [0, 1], physical_gpus=1)
    assert one_gpu.kind == "GPU" and one_gpu.carve == 2 and one_gpu.names == ("/device:GPU:0", "/device:GPU:1")
    cpu = plan_devices(2, [0, 1], physical_gpus=0)
    assert cpu.kind == "CPU" and cpu.carve == 2
    both_on_one = plan_devices(2, [0], physical_gpus=0)
    assert both_on_one.names == ("/device:CPU:0", "/device:CPU:0") and both_on_one.carve == 0
    assert plan_devices("merged", [0], physical_gpus=0).names == ("/device:CPU:0",)


@pytest.mark.parametrize("towers,ids,gpus,message", [
    (2, [0, 7], 2, "GPU 7 does not exist"),
    (2, [0, 7], 0, "cannot exist"),
    ("merged", [0, 1], 2, "at most 1"),
    (1, [0, 1], 0, "at most 1"),
    (2, [0, 1, 2], 4, "at most 2"),
])
def test_impossible_requests(towers, ids, gpus, message):
    with pytest.raises(DeviceError, match=message):
        plan_devices(towers, ids, physical_gpus=gpus)


@pytest.fixture(scope="module")
def placed(two_devices_module):
    return replica.build_model(2, num_classes=10, input_size=32, devices=two_devices_module)


@pytest.fixture(scope="module")
def two_devices_module():
    return replica.tower_devices(2, "0,1")


def tower_of(name):
    return 0 if name.startswith("fc8") else int(name.split("/")[-2 if "/" in name else 0].split("_")[1])


def test_every_variable_lives_on_its_towers_device(placed, two_devices_module):
    for var in placed.variables:
        layer = var.path.split("/")[-2]
        want = two_devices_module[0 if layer == "fc8" else int(layer.split("_")[1])]
        assert var.value.device.endswith(want.split("/device:")[1]), (var.path, var.value.device)


def test_input_gradients_go_first_only_when_the_towers_sit_on_two_devices(placed):
    """model.orders_gradients: on two devices every layer but conv1 puts its input gradient first (the other device
    waits for it at the exchanges); on one device the two gradients are left to run side by side."""
    layers = [placed.paper_layer(name, t) for name in ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
              for t in placed.towers]
    assert all(layer.input_gradient_first for layer in layers)
    assert not any(placed.paper_layer("conv1", t).input_gradient_first for t in placed.towers)
    assert model_lib.orders_gradients(["/device:CPU:0", "/device:CPU:1"])
    assert not model_lib.orders_gradients(["/device:CPU:0", "/device:CPU:0"])
    assert not model_lib.orders_gradients(None)


def test_every_activation_is_computed_on_its_towers_device(placed, two_devices_module):
    for name, tensor in placed.endpoints(tf.zeros([2, 32, 32, 3])).items():
        want = two_devices_module[0 if name == "fc8" else int(name.split("_")[1])]
        assert tensor.device.endswith(want.split("/device:")[1]), (name, tensor.device)


def executed_compute(model):
    """(node name, op type, device) of every convolution, matrix product and compiled function that ran in a
    compiled forward and backward pass of `model`, as the runtime placed them (partition graphs)."""
    @tf.function
    def step(x):
        logits = tf.cast(model(x, training=True, dropout_seed=tf.constant([1, 2], tf.int64)), tf.float32)
        return tf.gradients(tf.reduce_sum(logits ** 2), model.trainable_variables)

    metadata = profiling.run_metadata(step, tf.zeros([2, 32, 32, 3]))
    return [(n.name, n.op, n.device) for function_graph in metadata.function_graphs
            for partition in function_graph.partition_graphs for n in partition.node
            if "Conv2D" in n.op or "MatMul" in n.op or n.op == "PartitionedCall"]


def test_training_step_ops_run_on_their_towers_device(placed, two_devices_module):
    """Forward and backward ops of a compiled step, as the runtime placed them."""
    compute = executed_compute(placed)
    short = [d.split("/device:")[1] for d in two_devices_module]
    # Backward: every tower layer's gradient ops, found by name, ran on that tower's device.
    seen = set()
    for name, _, device in compute:
        match = re.search(r"/(conv[1-5]|fc[67]|norm[12])_([01])(_\d+)?/", name)
        if name.startswith("gradients/") and match:
            assert device.endswith(short[int(match.group(2))]), (name, device)
            seen.add(match.group(1, 2))
    assert len(seen) == 18
    # Forward: (grappler fuses and renames them) 5 convolutions, fc6 and fc7 per tower, fc8 on tower 0; and
    # each tower's two LRNs, XLA-compiled functions (speed_forms.cross_map_norm), on its device.
    forward = [device for name, _, device in compute if name.startswith(placed.name + "_")]   # the step's own ops
    assert sum(d.endswith(short[0]) for d in forward) == 10 and sum(d.endswith(short[1]) for d in forward) == 9
    norms = [(name, device) for name, op, device in compute if op == "PartitionedCall" and "/norm" in name]
    assert len(norms) == 12   # per tower: norm1 and norm2 forward, two passes each backward
    for name, device in norms:
        assert device.endswith(short[int(re.search(r"/norm[12]_([01])/", name).group(1))]), (name, device)


def test_bfloat16_lrn_sums_run_on_their_towers_device(two_devices_module):
    """In mixed bfloat16 the LRN sums its adjacent maps by band matmuls (speed_forms.band_sum): forward and backward,
    each tower's on its own device."""
    model = replica.build_model(2, num_classes=10, input_size=32, devices=two_devices_module,
                                precision="mixed_bfloat16")
    short = [d.split("/device:")[1] for d in two_devices_module]
    sums = [(name, device) for name, op, device in executed_compute(model)
            if "MatMul" in op and re.search(r"/norm[12]_[01]/", name)]
    assert len(sums) == 8   # per tower: norm1 and norm2, forward and backward
    for name, device in sums:
        assert device.endswith(short[int(re.search(r"/norm[12]_([01])/", name).group(1))]), (name, device)


@pytest.mark.slow
def test_share_cores_sets_each_simulated_devices_threads():
    """In a fresh process (threads are fixed when TensorFlow starts): two devices of the machine's cores get half
    of them each; `cores` simulates smaller devices (benchmark --cores_per_device)."""
    import os
    import subprocess
    import sys
    code = ("import sys; from replica.net import devices; import tensorflow as tf; "
            "devices.share_cores(int(sys.argv[1]), cores=int(sys.argv[2]) or None); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    def threads(count, cores):
        out = subprocess.run([sys.executable, "-c", code, str(count), str(cores)], capture_output=True, text=True,
                             check=True).stdout.split()
        return tuple(int(x) for x in out)
    assert threads(2, 0) == (max(1, os.cpu_count() // 2), 2)
    assert threads(1, 1) == (1, 1)
