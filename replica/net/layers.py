"""The paper's building blocks as Keras layers: conv/fc with the paper's initialisation, LRN, pooling, dropout.

Section numbers refer to ../shared/PAPER.md. What these compute is the paper's; how their backward passes and the
LRN are computed fast is replica/net/speed_forms.py's.
"""
import keras
import tensorflow as tf

from replica import choices, paper
from replica.net import speed_forms


def weight_initializer(seed=None):
    """N(0, 0.01^2) for every kernel (PAPER.md 1)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=paper.WEIGHT_INIT_STDDEV, seed=seed)


def bias_initializer(layer, positive_bias=paper.POSITIVE_BIAS):
    """Bias 1 on conv2, conv4, conv5, fc6, fc7 and 0 elsewhere (PAPER.md 1); `layer` is the paper's name.

    `positive_bias` 0.1 is Caffe's value (PAPER.md 1: bias 1 can stall training).
    """
    return keras.initializers.Constant(positive_bias if layer in paper.BIAS_ONE_LAYERS else 0.0)


def conv(layer, filters, kernel, stride=1, padding="same", groups=1, name=None, positive_bias=paper.POSITIVE_BIAS,
         precision="float32", input_gradient_first=False):
    """A convolution named after the paper's layer, with the paper's initialisation; the activation follows.
    precision: a Keras dtype policy ("float32", "mixed_bfloat16", "mixed_float16": float32 weights, arithmetic in
    the second half's type; replica.net.precision.layer_policy).
    input_gradient_first: see `convolve_input_gradient_first` (not for a net's first layer)."""
    return speed_forms.Conv2D(
        filters, kernel, strides=stride, padding=padding, groups=groups,
        kernel_initializer=weight_initializer(), bias_initializer=bias_initializer(layer, positive_bias),
        name=name or layer, dtype=precision, input_gradient_first=input_gradient_first)


def dense(layer, units, name=None, positive_bias=paper.POSITIVE_BIAS, precision="float32",
          input_gradient_first=False):
    """A fully-connected layer with the paper's initialisation; the activation follows."""
    return speed_forms.Dense(units, kernel_initializer=weight_initializer(),
                 bias_initializer=bias_initializer(layer, positive_bias), name=name or layer, dtype=precision,
                 input_gradient_first=input_gradient_first)


LRN_MODES = choices.LRN_MODES


def lrn_constants(mode):
    """(k, alpha) of b = a / (k + alpha * sum a^2)^beta for an LRN mode (PAPER.md 3): the paper's k 2, alpha 1e-4;
    cuda-convnet's alpha divided by n = 5; Caffe's (bvlc_alexnet, ONNX's LRN) k 1 and alpha divided by n."""
    if mode == "paper":
        return paper.LRN_K, paper.LRN_ALPHA
    if mode == "cuda-convnet":
        return paper.LRN_K, paper.LRN_ALPHA / paper.LRN_N
    if mode == "caffe":
        return 1.0, paper.LRN_ALPHA / paper.LRN_N
    raise ValueError(f"LRN mode {mode!r} has no constants; choose one of {LRN_MODES}")


def local_response_norm(x, mode="paper", groups=1):
    """b = a / (k + alpha * sum_{5 adjacent maps} a^2)^beta (PAPER.md 3, paper 3.3), over the last axis.

    `groups` > 1 normalises each group of maps on its own, as each GPU normalised only its own maps (PAPER.md 1);
    this is what makes a grouped single-device net the same function as the two towers.
    """
    if mode == "none":
        return x
    k, alpha = lrn_constants(mode)
    # computed in float32 whatever x's dtype (speed_forms.cross_map_norm), returned in x's dtype
    return speed_forms.cross_map_norm(x, paper.LRN_N, k, alpha, paper.LRN_BETA, groups)


def rectified_response_norm(x, mode="paper", groups=1):
    """local_response_norm(relu(x)): conv1's and conv2's ReLU, then their LRN (paper 3.3), as one op whose passes
    apply the ReLU as they read the convolution's output (speed_forms.rectified_cross_map_norm)."""
    if mode == "none":
        return tf.nn.relu(x)
    k, alpha = lrn_constants(mode)
    return speed_forms.FORMS["relu_then_lrn"](x, paper.LRN_N, k, alpha, paper.LRN_BETA, groups)


POOLING_MODES = choices.POOLING_MODES


def max_pool(x, mode="overlapping", padding="VALID"):
    """Max pooling 3x3 stride 2 (overlapping, paper 3.4) or 2x2 stride 2 (the ablation).

    padding "CEIL" is Caffe's pooling: ceil((size - window) / stride) + 1 outputs, the last window running past the
    bottom/right edge over nothing (the ONNX model zoo writes it as pads [0, 0, 1, 1]); equal to "VALID" wherever
    the windows fit exactly, as at 227x227 (55, 27, 13 maps)."""
    window, stride = paper.POOL_OVERLAPPING if mode == "overlapping" else paper.POOL_NON_OVERLAPPING
    if padding == "CEIL":
        x = tf.pad(x, [[0, 0], [0, ceil_pad(x.shape[1], window, stride)], [0, ceil_pad(x.shape[2], window, stride)],
                       [0, 0]], constant_values=x.dtype.min)
        padding = "VALID"
    return tf.nn.max_pool2d(x, window, stride, padding)


def ceil_pad(size, window, stride):
    """Rows past the edge that Caffe's ceil-mode pooling reads: (ceil((size - window) / stride)) * stride + window
    - size."""
    return -(-(size - window) // stride) * stride + window - size


ACTIVATIONS = choices.ACTIVATIONS


def activation(name):
    """The non-linearity after every layer but the last: ReLU (paper 3.1), or the tanh it is compared with (Fig. 1);
    each choice is named as tf.nn names it."""
    return getattr(tf.nn, choices.require_one_of("activation", name, ACTIVATIONS))


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
    return speed_forms.cross_map_norm(x, size, 1.0, 0.001 / size, 0.75)
