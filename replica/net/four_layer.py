"""The CIFAR-10 four-layer net of the paper's Fig. 1 and its LRN claim (PAPER.md 5, paper 3.1 and 3.3).

cuda-convnet's `layers-conv-local-13pct` / `-11pct` configurations: conv1 64@5x5, max pool 3/2, conv2 64@5x5,
max pool 3/2, two locally-connected layers (local3 64@3x3, local4 32@3x3), fc10. The 11% net adds cross-map LRN
(size 9, scale 0.001, power 0.75) after pool1 and after conv2, and trains on random 24x24 crops. Map sizes at
32x32: 32, 16, 16, 8, 8, 8 (24, 12, 12, 6, 6, 6 at 24x24): the pools are 'same', like cuda-convnet's.

One device, one tower: the Trainer sees the same small interface as `replica.net.model.AlexNet` (towers,
tower_device, on_tower, paper_layer, batch_shard), so the paper's recipe, checkpoints and evaluation apply as is.
"""
import contextlib

import keras
import tensorflow as tf

from replica import choices
from replica.net import layers as L

LRN_SIZE = 9


class FourLayerNet(keras.Model):
    """`call` returns the fc10 logits; `endpoints` every named activation."""

    def __init__(self, activation="relu", lrn=False, input_size=32, name="four_layer"):
        super().__init__(name=name)
        choices.require_one_of("activation", activation, L.ACTIVATIONS)
        self.activation, self.lrn, self.input_size = activation, lrn, input_size
        self.batch_shard = (0, 1)
        self.conv1 = L.conv("conv1", 64, 5)
        self.conv2 = L.conv("conv2", 64, 5, positive_bias=0.0)
        self.local3 = L.LocallyConnected2D(64, 3, name="local3")
        self.local4 = L.LocallyConnected2D(32, 3, name="local4")
        self.fc10 = L.dense("fc10", 10)

    # the Trainer's interface: one tower on TensorFlow's default device
    towers = range(1)

    def tower_device(self, tower):
        return None

    def on_tower(self, tower):
        return contextlib.nullcontext()

    def paper_layer(self, layer, tower=0):
        return self.get_layer(layer)

    def build(self, input_shape):
        self.endpoints(tf.zeros([1, self.input_size, self.input_size, 3]))

    def call(self, images, training=False, dropout_seed=None):
        return self.endpoints(images)["fc10"]

    def endpoints(self, images, training=False, dropout_seed=None):
        act = L.activation(self.activation)
        out = {}
        x = out["conv1"] = act(self.conv1(images))
        x = out["pool1"] = L.max_pool(x, padding="SAME")
        if self.lrn:
            x = L.cross_map_norm_cuda_convnet(x, LRN_SIZE)
        x = out["conv2"] = act(self.conv2(x))
        if self.lrn:
            x = L.cross_map_norm_cuda_convnet(x, LRN_SIZE)
        x = out["pool2"] = L.max_pool(x, padding="SAME")
        x = out["local3"] = act(self.local3(x))
        x = out["local4"] = act(self.local4(x))
        out["fc10"] = self.fc10(tf.reshape(x, [tf.shape(x)[0], -1]))
        return out


def build_four_layer_net(activation="relu", lrn=False, input_size=32):
    """The four-layer net with its variables created: relu or tanh; lrn True gives the 11% net's normalisation."""
    model = FourLayerNet(activation, lrn, input_size)
    model.build((None, input_size, input_size, 3))
    return model
