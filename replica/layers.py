"""The paper's building blocks as Keras layers: conv/fc with the paper's initialisation, LRN, pooling, dropout.

Section numbers refer to ../shared/PAPER.md.
"""
import keras
import tensorflow as tf

from replica import paper


def weight_initializer(seed=None):
    """N(0, 0.01^2) for every kernel (PAPER.md 1)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=paper.WEIGHT_INIT_STDDEV, seed=seed)


def bias_initializer(layer, positive_bias=paper.POSITIVE_BIAS):
    """Bias 1 on conv2, conv4, conv5, fc6, fc7 and 0 elsewhere (PAPER.md 1); `layer` is the paper's name.

    `positive_bias` 0.1 is Caffe's value (PAPER.md 1: bias 1 can stall training).
    """
    return keras.initializers.Constant(positive_bias if layer in paper.BIAS_ONE_LAYERS else 0.0)


def conv(layer, filters, kernel, stride=1, padding="same", groups=1, name=None, positive_bias=paper.POSITIVE_BIAS):
    """A convolution named after the paper's layer, with the paper's initialisation; the activation follows."""
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, padding=padding, groups=groups,
        kernel_initializer=weight_initializer(), bias_initializer=bias_initializer(layer, positive_bias),
        name=name or layer)


def dense(layer, units, name=None, positive_bias=paper.POSITIVE_BIAS):
    """A fully-connected layer with the paper's initialisation; the activation follows."""
    return keras.layers.Dense(units, kernel_initializer=weight_initializer(),
                              bias_initializer=bias_initializer(layer, positive_bias), name=name or layer)


LRN_MODES = ("paper", "cuda-convnet", "none")


def lrn_alpha(mode):
    """alpha of the paper's formula (PAPER.md 3); cuda-convnet and Caffe divide it by n = 5."""
    if mode == "paper":
        return paper.LRN_ALPHA
    if mode == "cuda-convnet":
        return paper.LRN_ALPHA / paper.LRN_N
    raise ValueError(f"LRN mode {mode!r} has no alpha; choose one of {LRN_MODES}")


def local_response_norm(x, mode="paper", groups=1):
    """b = a / (k + alpha * sum_{5 adjacent maps} a^2)^beta (PAPER.md 3, paper 3.3), over the last axis.

    `groups` > 1 normalises each group of maps on its own, as each GPU normalised only its own maps (PAPER.md 1);
    this is what makes a grouped single-device net the same function as the two towers.
    """
    if mode == "none":
        return x
    kwargs = dict(depth_radius=paper.LRN_DEPTH_RADIUS, bias=paper.LRN_K, alpha=lrn_alpha(mode),
                  beta=paper.LRN_BETA)
    if groups == 1:
        return tf.nn.local_response_normalization(x, **kwargs)
    return tf.concat([tf.nn.local_response_normalization(part, **kwargs)
                      for part in tf.split(x, groups, axis=-1)], axis=-1)


POOLING_MODES = ("overlapping", "non-overlapping")


def max_pool(x, mode="overlapping", padding="VALID"):
    """Max pooling 3x3 stride 2 (overlapping, paper 3.4) or 2x2 stride 2 (the ablation)."""
    window, stride = paper.POOL_OVERLAPPING if mode == "overlapping" else paper.POOL_NON_OVERLAPPING
    return tf.nn.max_pool2d(x, window, stride, padding)


ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.math.tanh}


def dropout(x, rate, seed, shard=(0, 1)):
    """Inverted dropout with a stateless mask drawn from `seed` (a shape-[2] int tensor).

    Stateless, so a resumed run draws exactly the masks an uninterrupted run would. shard (k, n): x holds rows
    k*b..(k+1)*b of a global batch of n*b; the mask is those rows of the global batch's mask, so n workers drop
    what one process training on the global batch would.
    """
    if rate <= 0.0:
        return x
    index, count = shard
    rows = tf.shape(x)[0]
    uniform = tf.random.stateless_uniform([rows * count, tf.shape(x)[1]], seed=seed)
    keep = uniform[index * rows:(index + 1) * rows] >= rate
    return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))
