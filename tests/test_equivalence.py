"""The same weights give the same logits on two devices, on one device, grouped, and collapsed (PAPER.md 1-2)."""
import numpy as np
import pytest
import tensorflow as tf

import replica
from replica.net import model as model_lib
from tests.conftest import lively_weights


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(a).max())


@pytest.fixture(scope="module")
def source():
    devices = replica.tower_devices(2, "0,1")
    model = lively_weights(replica.build_model(2, num_classes=10, devices=devices))
    images = tf.random.uniform([2, 227, 227, 3], -120, 120, seed=7)   # mean-subtracted pixels: LRN is active
    logits = model(images).numpy()
    assert logits.std() > 0.1   # the comparison below is not between two near-constant outputs
    return model, images, logits


def test_two_devices_equal_one_device(source):
    model, images, logits = source
    one = replica.copy_weights(model, replica.build_model(2, num_classes=10, devices=["/device:CPU:0"] * 2))
    assert relative_error(logits, one(images).numpy()) < 1e-5


def test_grouped_convolution_net_computes_the_same_function(source):
    model, images, logits = source
    assert relative_error(logits, replica.to_grouped(model)(images).numpy()) < 1e-5


def test_collapsed_merged_net_computes_the_same_function(source):
    model, images, logits = source
    merged = replica.collapse_to_merged(model)
    assert merged.count_params() == 62_378_344 - 4_097_000 + 4096 * 10 + 10   # the merged net, with 10 classes
    assert relative_error(logits, merged(images).numpy()) < 1e-5
    # the off-diagonal blocks are zero: tower 0's conv2 maps never saw tower 1's conv1 maps
    assert not merged.get_layer("conv2").kernel.numpy()[:, :, 48:, :128].any()


def test_lrn_across_all_maps_is_not_the_towers_function(source):
    """Caffe's single LRN over all 96/256 maps differs at the tower boundary (PAPER.md 1)."""
    model, images, logits = source
    across = replica.collapse_to_merged(model)
    across.design = model_lib.design_for("merged")   # LRN over all maps, as a plain merged net does
    assert relative_error(logits, across(images).numpy()) > 1e-4


def test_mixed_bfloat16_is_the_same_net_to_bfloat16_rounding(source):
    """--precision=mixed_bfloat16: float32 weights (the same checkpoint loads), bfloat16 maps, float32 logits
    within bfloat16's 8-bit mantissa of the float32 net (a few per cent), not bit-equal."""
    model, images, logits = source
    mixed = replica.copy_weights(model, replica.build_model(2, num_classes=10, devices=model.devices,
                                                            precision="mixed_bfloat16"))
    assert {str(v.dtype) for v in mixed.trainable_variables} == {"float32"}
    ends = mixed.endpoints(images)
    assert ends["conv1_0"].dtype == tf.bfloat16 and ends["fc8"].dtype == tf.float32
    error = relative_error(logits, ends["fc8"].numpy())
    assert 1e-5 < error < 0.05


def test_moving_an_exchange_point_is_one_edit_of_the_topology(monkeypatch, two_devices):
    """With conv4 instead of conv3 as the exchange (paper.TOPOLOGY edited, nothing else), the towers, their
    placement's crossings, the collapse and the per-layer table all follow."""
    import dataclasses
    from replica import paper
    topology = [dataclasses.replace(layer, sees={"conv3": "own", "conv4": "both"}.get(layer.name, layer.sees))
                for layer in paper.TOPOLOGY]
    monkeypatch.setattr(paper, "TOPOLOGY", tuple(topology))
    model = lively_weights(replica.build_model(2, num_classes=10, input_size=32, devices=two_devices))
    assert model.exchange_layers == ("conv4", "fc6", "fc7", "fc8")
    assert model.paper_layer("conv3", 0).kernel.shape[2] == 128 and model.paper_layer("conv4", 0).kernel.shape[2] == 384
    images = tf.random.uniform([2, 32, 32, 3], -120, 120, seed=3)
    logits = model(images).numpy()
    assert relative_error(logits, replica.collapse_to_merged(model)(images).numpy()) < 1e-5
    assert relative_error(logits, replica.to_grouped(model)(images).numpy()) < 1e-5
    rows = {r.name: r for r in replica.layer_table(model)}
    assert rows["conv4_0"].crosses_device and not rows["conv3_0"].crosses_device
