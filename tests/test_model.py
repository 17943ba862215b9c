"""The three nets built exactly: parameters, map sizes, names, initialisation (PAPER.md 1 and 2)."""
import numpy as np
import pytest
import tensorflow as tf

import replica
from replica import paper
from tests.conftest import lively_weights

PER_LAYER_PARAMS_TWO_TOWERS = {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
                               "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}


@pytest.fixture(scope="module")
def towers():
    return replica.build_model(2)


@pytest.mark.parametrize("kind,params", [(2, 60_965_224), (1, 59_798_312), ("merged", 62_378_344),
                                         ("grouped", 60_965_224)])
def test_exact_parameter_counts(kind, params):
    assert replica.build_model(kind).count_params() == params


def test_per_layer_parameters_and_names(towers):
    names = [layer.name for layer in towers.layers]
    assert names == [f"{l}_{t}" for t in (0, 1) for l in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
                     ] + ["fc8"]
    for layer, want in PER_LAYER_PARAMS_TWO_TOWERS.items():
        got = sum(l.count_params() for l in towers.layers if l.name.split("_")[0] == layer)
        assert got == want, layer
    assert [l.name for l in replica.build_model("merged").layers] == list(paper.LAYER_NAMES)


def test_map_sizes_at_227(towers):
    ends = towers.endpoints(tf.zeros([1, 227, 227, 3]))
    assert [ends[k].shape[1] for k in ("conv1_0", "pool1_0", "pool2_1", "conv5_0", "pool5_1")] == [55, 27, 13, 13, 6]
    assert ends["conv3_0"].shape[-1] == 192 and ends["fc8"].shape[-1] == 1000


def test_small_image_geometry_keeps_widths_and_exchanges():
    net = replica.build_model(2, num_classes=10, input_size=32)
    ends = net.endpoints(tf.zeros([1, 32, 32, 3]))
    assert [ends[k].shape[1] for k in ("conv1_0", "pool1_0", "pool2_0", "conv5_1", "pool5_0")] == [32, 16, 8, 8, 4]
    assert net.get_layer("conv3_0").kernel.shape == (3, 3, 256, 192)   # still sees both towers
    assert net.get_layer("conv4_1").kernel.shape == (3, 3, 192, 192)   # still its own tower only
    assert net.get_layer("fc6_0").kernel.shape == (4 * 4 * 256, 2048)
    assert net.get_layer("conv1_0").kernel.shape == (5, 5, 3, 48)


def test_initialisation_follows_the_paper(towers):
    for layer in towers.layers:
        kernel, bias = (w.numpy() for w in (layer.kernel, layer.bias))
        if kernel.size > 10_000:
            assert abs(kernel.std() - 0.01) < 0.001, layer.name
            assert abs(kernel.mean()) < 0.001, layer.name
        want = 1.0 if layer.name.split("_")[0] in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert np.all(bias == want), layer.name


def test_224_crop_equals_227_with_three_zero_rows_and_columns():
    at_227 = lively_weights(replica.build_model(2, num_classes=10, input_size=227))
    at_224 = replica.copy_weights(at_227, replica.build_model(2, num_classes=10, input_size=224))
    crop = tf.random.uniform([2, 224, 224, 3], -1, 1, seed=0)
    padded = tf.pad(crop, [[0, 0], [0, 3], [0, 3], [0, 0]])
    np.testing.assert_allclose(at_224(crop).numpy(), at_227(padded).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("option,value", [("lrn", "cuda"), ("pooling", "2x2"), ("activation", "gelu")])
def test_bad_options_are_refused(option, value):
    with pytest.raises(ValueError, match=option):
        replica.build_model(2, **{option: value})


def test_pooling_and_activation_options_change_the_function():
    base = lively_weights(replica.build_model(2, num_classes=10, input_size=32))
    x = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=1)
    for option in (dict(pooling="non-overlapping"), dict(activation="tanh"), dict(lrn="none"),
                   dict(lrn="cuda-convnet")):
        other = replica.copy_weights(base, replica.build_model(2, num_classes=10, input_size=32, **option))
        assert not np.allclose(base(x).numpy(), other(x).numpy(), rtol=1e-4), option


@pytest.mark.parametrize("dropped", ["conv3", "conv4"])
def test_dropping_a_middle_conv_layer(dropped, two_devices):
    """Experiment 9 (paper 7). Without conv3 its 885,120 weights go and conv4 widens to the 256 maps of both towers'
    pool2 (2 x 442,560 instead of 2 x 331,968); without conv4 its 663,936 go: 60,301,288 either way."""
    model = replica.build_model(2, devices=two_devices, drop_layer=dropped)
    assert model.count_params() == 60_301_288
    assert all(not l.name.startswith(dropped) for l in model.layers)
    table = replica.layer_table(model)
    meets = {r.layer for r in table if r.crosses_device}
    assert meets == {"conv4" if dropped == "conv3" else "conv3", "fc6", "fc7", "fc8"}
    assert sum(r.bytes_in for r in table if r.layer in ("conv3", "conv4")) == 2 * 13 * 13 * 128 * 4
    assert model(tf.zeros([2, 227, 227, 3])).shape == (2, 1000)
    with pytest.raises(ValueError, match="drop_layer"):
        replica.build_model(2, drop_layer="conv5")


def test_conv1_and_conv2_are_relu_then_lrn_then_pooling():
    """pool1 and pool2 of each tower are the max pool of the LRN of the ReLU'd convolution (paper 3.3-3.4), the
    order the paper gives, whether or not the ReLU is computed inside the LRN's passes."""
    from replica.net import layers
    model = lively_weights(replica.build_model(2, num_classes=10, input_size=32, positive_bias=0.1))
    assert model.relu_inside_lrn
    images = tf.constant(np.random.default_rng(3).normal(0, 60, (2, 32, 32, 3)), tf.float32)
    out = model.endpoints(images)
    for layer in ("1", "2"):
        for t in model.towers:
            conv = out[f"conv{layer}_{t}"]
            assert float(tf.reduce_min(conv)) == 0.0   # the endpoint is after the ReLU, and some of it is cut
            want = layers.max_pool(layers.local_response_norm(conv, "paper", model.lrn_groups), "overlapping",
                                   model.geometry.pool_padding)
            np.testing.assert_allclose(out[f"pool{layer}_{t}"].numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
