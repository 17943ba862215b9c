"""The paper's building blocks as Keras layers: conv/fc with the paper's initialisation, LRN, pooling, dropout.

Section numbers refer to ../shared/PAPER.md.
"""
import keras
import numpy as np
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


PRECISIONS = ("float32", "mixed_bfloat16")


def conv(layer, filters, kernel, stride=1, padding="same", groups=1, name=None, positive_bias=paper.POSITIVE_BIAS,
         precision="float32"):
    """A convolution named after the paper's layer, with the paper's initialisation; the activation follows.
    precision "mixed_bfloat16": float32 weights, bfloat16 arithmetic (Keras' dtype policy)."""
    return Conv2D(
        filters, kernel, strides=stride, padding=padding, groups=groups,
        kernel_initializer=weight_initializer(), bias_initializer=bias_initializer(layer, positive_bias),
        name=name or layer, dtype=precision)


def dense(layer, units, name=None, positive_bias=paper.POSITIVE_BIAS, precision="float32"):
    """A fully-connected layer with the paper's initialisation; the activation follows."""
    return Dense(units, kernel_initializer=weight_initializer(),
                 bias_initializer=bias_initializer(layer, positive_bias), name=name or layer, dtype=precision)


@tf.custom_gradient
def matmul(x, w):
    """x @ w, whose input gradient dy @ w^T goes through BatchMatMul (a batch of one) rather than MatMul: the same
    sums, but oneDNN's MatMul multiplies by a transposed weight slowly. For fc6's 9216 x 4096 weight at batch 128
    (python experiments/speed_trials.py --trial=fc_input_gradient): dy @ w^T by MatMul 49 ms, as (w @ dy^T)^T by
    MatMul 31 ms, by BatchMatMul 24 ms; BatchMatMul is the fastest for the nets' fc shapes with two threads and
    with one, fc8's within 5% of the others (experiments/README.md, speed)."""
    def gradient(dy):
        dx = tf.linalg.matmul(dy[tf.newaxis], w[tf.newaxis], transpose_b=True)[0]
        return dx, tf.matmul(x, dy, transpose_a=True)
    return tf.matmul(x, w), gradient


@tf.custom_gradient
def bias_add(x, bias):
    """x + bias over the last axis, whose bias gradient is a plain sum of dy (in float32) instead of BiasAddGrad.

    Forward it is still a BiasAdd, which the runtime fuses with the convolution and the ReLU. Backward, TensorFlow
    fuses BiasAddGrad into the kernel gradient (oneDNN's Conv2DBackpropFilterWithBias), and for conv1 (11x11,
    stride 4, 3 input maps) that fused kernel took 115 ms per tower at batch 128 on one core against 78 ms for
    the kernel gradient alone; the sum costs a few ms (experiments/README.md, speed)."""
    def gradient(dy):
        axes = list(range(len(dy.shape) - 1))
        return dy, tf.cast(tf.reduce_sum(tf.cast(dy, tf.float32), axes), bias.dtype)
    return tf.nn.bias_add(x, bias), gradient


class Dense(keras.layers.Dense):
    """Keras' Dense with the faster backward passes of `matmul` and `bias_add` (no activation, LoRA or
    quantisation: not used)."""

    def call(self, inputs, training=None):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        return bias_add(matmul(inputs, kernel), bias)


class Conv2D(keras.layers.Conv2D):
    """Keras' Conv2D (grouped too) with the faster backward pass of `bias_add`."""

    def call(self, inputs):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        return bias_add(self.convolution_op(inputs, kernel), bias)


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
    # in float32 whatever the precision: the sum of 5 squares of activations in the hundreds loses too much in
    # bfloat16's 8-bit mantissa
    normalised = cross_map_norm(tf.cast(x, tf.float32), paper.LRN_N, paper.LRN_K, lrn_alpha(mode), paper.LRN_BETA,
                                groups)
    return tf.cast(normalised, x.dtype)


def adjacent_maps(maps, size, groups=1):
    """The maps x maps 0/1 matrix whose column i selects the `size` maps centred on map i within i's group."""
    index = np.arange(maps)
    group = index // (maps // groups)
    near = np.abs(index[:, None] - index[None, :]) <= size // 2
    return tf.constant((near & (group[:, None] == group[None, :])).astype(np.float32))


def inverse_power(u, beta):
    """u^-beta; for the paper's beta = 0.75 as rsqrt(u) * sqrt(rsqrt(u)), several times cheaper than pow."""
    if beta == 0.75:
        r = tf.math.rsqrt(u)
        return r * tf.sqrt(r)
    return tf.pow(u, -beta)


def cross_map_norm(x, size, k, alpha, beta, groups=1):
    """b_i = a_i / (k + alpha * sum_{j within size/2 of i, same group} a_j^2)^beta over the last axis of x.

    The sum over adjacent maps is a matmul with a banded matrix (which also keeps groups apart), and the gradient
    is written out, dL/da = g * s - 2 alpha beta * a * (band @ (g * b / u)) with u = k + alpha * sum and
    s = u^-beta: the same numbers as tf.nn.local_response_normalization and its gradient (tests/test_layers.py),
    without its pow (experiments/README.md, speed). The constants ride in the matmuls, which the runtime fuses with
    the bias k: u is one fused matmul, not a matmul and two passes over the maps, and the gradient saves a pass.
    """
    maps = x.shape[-1]
    band = adjacent_maps(maps, size, groups)
    alpha_band, gradient_band = alpha * band, (2.0 * alpha * beta) * band
    k_per_map = tf.fill([maps], tf.constant(k, tf.float32))

    @tf.custom_gradient
    def normalise(x):
        a = tf.reshape(x, [-1, maps])
        u = tf.nn.bias_add(tf.linalg.matmul(tf.square(a), alpha_band), k_per_map)
        scale = inverse_power(u, beta)
        b = a * scale

        def gradient(g):
            g = tf.reshape(g, [-1, maps])
            da = g * scale - a * tf.linalg.matmul(g * b / u, gradient_band)
            return tf.reshape(da, tf.shape(x))
        return tf.reshape(b, tf.shape(x)), gradient
    return normalise(x)


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


class LocallyConnected2D(keras.layers.Layer):
    """A convolution whose kernel differs at every output position ('same' padding, stride 1): cuda-convnet's
    `local` layer, which its CIFAR-10 four-layer nets use for layers 3 and 4 (PAPER.md 5). Keras 3 has none."""

    def __init__(self, filters, kernel_size, name=None, stddev=paper.WEIGHT_INIT_STDDEV):
        super().__init__(name=name)
        self.filters, self.kernel_size, self.stddev = filters, kernel_size, stddev

    def build(self, input_shape):
        _, height, width, channels = input_shape
        patch = self.kernel_size * self.kernel_size * channels
        self.kernel = self.add_weight(shape=(height, width, patch, self.filters), name="kernel",
                                      initializer=keras.initializers.RandomNormal(stddev=self.stddev))
        self.bias = self.add_weight(shape=(height, width, self.filters), name="bias", initializer="zeros")

    def call(self, x):
        k = self.kernel_size
        patches = tf.image.extract_patches(x, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
        return tf.einsum("bhwp,hwpf->bhwf", patches, self.kernel) + self.bias


def cross_map_norm_cuda_convnet(x, size):
    """cuda-convnet's `cmrnorm` with the four-layer net's constants (size 9, scale 0.001, power 0.75): its k is 1
    and it divides the scale by the size (PAPER.md 5)."""
    return cross_map_norm(x, size, 1.0, 0.001 / size, 0.75)
