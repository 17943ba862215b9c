"""The CIFAR-10 four-layer net of Fig. 1 (PAPER.md 5): sizes, the locally-connected layer and cmrnorm by hand."""
import numpy as np
import pytest
import tensorflow as tf

from replica.net import four_layer, layers
from tests.test_layers import lrn_by_formula


@pytest.mark.parametrize("size,params,maps", [(32, 3_672_906, 8), (24, 2_112_970, 6)])
def test_parameters_and_map_sizes(size, params, maps):
    """conv1 4,864 + conv2 102,464 + local3 maps^2 x (576 x 64 + 64) + local4 maps^2 x (576 x 32 + 32) + fc10."""
    model = four_layer.build_four_layer_net(input_size=size)
    assert model.count_params() == params
    ends = model.endpoints(tf.zeros([2, size, size, 3]))
    assert ends["pool1"].shape[1:] == (size // 2, size // 2, 64)
    assert ends["local4"].shape[1:] == (maps, maps, 32) and ends["fc10"].shape == (2, 10)


def test_locally_connected_layer_uses_a_kernel_per_position():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    layer = layers.LocallyConnected2D(6, 3, name="local")
    layer.build(x.shape)
    kernel = rng.normal(size=layer.kernel.shape).astype(np.float32)
    bias = rng.normal(size=layer.bias.shape).astype(np.float32)
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    want = np.empty((2, 4, 5, 6), np.float64)
    for i in range(4):
        for j in range(5):
            patch = padded[:, i:i + 3, j:j + 3, :].reshape(2, -1)   # (row, column, channel) order
            want[:, i, j] = patch @ kernel[i, j] + bias[i, j]
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), want, rtol=1e-4, atol=1e-4)


def test_cuda_convnet_cross_map_norm():
    a = np.random.default_rng(1).uniform(0, 30, (2, 3, 3, 20)).astype(np.float32)
    got = layers.cross_map_norm_cuda_convnet(tf.constant(a), 9).numpy()
    want = lrn_by_formula(a.astype(np.float64), alpha=0.001 / 9, n=9, k=1.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_activation_and_lrn_change_the_function():
    x = tf.random.stateless_normal([2, 32, 32, 3], seed=[0, 1], stddev=50.0)
    outs, firsts = [], []
    for activation, lrn in (("relu", False), ("tanh", False), ("relu", True)):
        tf.keras.utils.set_random_seed(0)
        ends = four_layer.build_four_layer_net(activation, lrn).endpoints(x)
        outs.append(ends["conv2"].numpy())
        firsts.append(ends["conv1"].numpy())
    np.testing.assert_array_equal(firsts[0], firsts[2])   # the same weights: only the LRN after pool1 differs
    assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[0], outs[2], rtol=1e-3)
    with pytest.raises(ValueError, match="activation"):
        four_layer.FourLayerNet("sigmoid")
