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


def conv(layer, filters, kernel, stride=1, padding="same", groups=1, name=None, positive_bias=paper.POSITIVE_BIAS,
         precision="float32", input_gradient_first=False):
    """A convolution named after the paper's layer, with the paper's initialisation; the activation follows.
    precision: a Keras dtype policy ("float32", "mixed_bfloat16", "mixed_float16": float32 weights, arithmetic in
    the second half's type; replica.precision.layer_policy).
    input_gradient_first: see `convolve_input_gradient_first` (not for a net's first layer)."""
    return Conv2D(
        filters, kernel, strides=stride, padding=padding, groups=groups,
        kernel_initializer=weight_initializer(), bias_initializer=bias_initializer(layer, positive_bias),
        name=name or layer, dtype=precision, input_gradient_first=input_gradient_first)


def dense(layer, units, name=None, positive_bias=paper.POSITIVE_BIAS, precision="float32",
          input_gradient_first=False):
    """A fully-connected layer with the paper's initialisation; the activation follows."""
    return Dense(units, kernel_initializer=weight_initializer(),
                 bias_initializer=bias_initializer(layer, positive_bias), name=name or layer, dtype=precision,
                 input_gradient_first=input_gradient_first)


def matmul(x, w, input_gradient_first=False):
    """x @ w, whose input gradient dy @ w^T goes through BatchMatMul (a batch of one) rather than MatMul: the same
    sums, but oneDNN's MatMul multiplies by a transposed weight slowly (docs/performance.md).
    input_gradient_first: the weight gradient waits for the input gradient (see `convolve_input_gradient_first`)."""
    @tf.custom_gradient
    def product(x, w):
        def gradient(dy):
            dx = tf.linalg.matmul(dy[tf.newaxis], w[tf.newaxis], transpose_b=True)[0]
            with tf.control_dependencies([dx] if input_gradient_first else []):
                return dx, tf.matmul(x, dy, transpose_a=True)
        return tf.matmul(x, w), gradient
    return product(x, w)


def convolve_input_gradient_first(x, kernel, strides, padding):
    """tf.nn.conv2d (NHWC) whose backward pass computes the input gradient before the kernel gradient.

    The input gradient is on the step's critical path: the layer below waits for it, and at an exchange (conv3,
    fc6, fc7) so does the other tower's device, while the kernel gradient is needed only by the update at the
    end. Left to itself, a device's executor may run the kernel gradient first and keep the other device waiting.
    On one device the order costs time (the two may run side by side), so `model.orders_gradients` asks for it only
    when the towers sit on two devices (experiments/README.md, speed). Not for a net's first layer, whose input
    gradient nobody needs."""
    strides, padding = [1, *strides, 1], padding.upper()

    @tf.custom_gradient
    def convolve(x, kernel):
        def gradient(dy):
            input_shape, kernel_shape = tf.shape(x), tf.shape(kernel)   # outside the order, so that it binds
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=input_shape, filter=kernel, out_backprop=dy,
                                                strides=strides, padding=padding)
            with tf.control_dependencies([dx]):   # the kernel gradient itself, not only an input of it, waits
                return dx, tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=kernel_shape, out_backprop=dy,
                                                           strides=strides, padding=padding)
        return tf.nn.conv2d(x, kernel, strides, padding), gradient
    return convolve(x, kernel)


@tf.custom_gradient
def bias_add(x, bias):
    """x + bias over the last axis, whose bias gradient is a plain sum of dy (in float32) instead of BiasAddGrad.

    Forward it is still a BiasAdd, which the runtime fuses with the convolution and the ReLU. Backward, TensorFlow
    would fuse BiasAddGrad into the kernel gradient (oneDNN's Conv2DBackpropFilterWithBias), which runs conv1's
    kernel gradient at a fraction of the rate of the unfused one (docs/performance.md)."""
    def gradient(dy):
        axes = list(range(len(dy.shape) - 1))
        return dy, tf.cast(tf.reduce_sum(tf.cast(dy, tf.float32), axes), bias.dtype)
    return tf.nn.bias_add(x, bias), gradient


class Dense(keras.layers.Dense):
    """Keras' Dense with the faster backward passes of `matmul` and `bias_add` (no activation, LoRA or
    quantisation: not used)."""

    def __init__(self, *args, input_gradient_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_gradient_first = input_gradient_first

    def call(self, inputs, training=None):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        return bias_add(matmul(inputs, kernel, self.input_gradient_first), bias)


class Conv2D(keras.layers.Conv2D):
    """Keras' Conv2D (grouped too) with the faster backward pass of `bias_add`, and with
    `input_gradient_first` (ungrouped only) that of `convolve_input_gradient_first`."""

    def __init__(self, *args, input_gradient_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_gradient_first = input_gradient_first and self.groups == 1

    def call(self, inputs):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        if self.input_gradient_first:
            return bias_add(convolve_input_gradient_first(inputs, kernel, self.strides, self.padding), bias)
        return bias_add(self.convolution_op(inputs, kernel), bias)


LRN_MODES = ("paper", "cuda-convnet", "caffe", "none")


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
    # in float32 whatever the precision: the sum of 5 squares of activations in the hundreds loses too much in
    # bfloat16's 8-bit mantissa
    normalised = cross_map_norm(tf.cast(x, tf.float32), paper.LRN_N, k, alpha, paper.LRN_BETA, groups)
    return tf.cast(normalised, x.dtype)


def adjacent_sum(x, size, groups=1):
    """sum_{j within size/2 of i, in i's group} x_j over the last axis: `size` shifted slices of the maps, each
    group zero-padded at its edges. Under XLA the slices fuse into one pass over x."""
    maps = x.shape[-1]
    width = maps // groups
    shape = tf.shape(x)
    x = tf.reshape(x, tf.concat([shape[:-1], [groups, width]], 0))
    half = size // 2
    padded = tf.pad(x, [[0, 0]] * (x.shape.rank - 1) + [[half, half]])
    return tf.reshape(tf.add_n([padded[..., i:i + width] for i in range(size)]), shape)


def inverse_power(u, beta):
    """u^-beta; for the paper's beta = 0.75 as rsqrt(u) * sqrt(rsqrt(u)), several times cheaper than pow."""
    if beta == 0.75:
        r = tf.math.rsqrt(u)
        return r * tf.sqrt(r)
    return tf.pow(u, -beta)


def _denominator(a, size, k, alpha, groups):
    """u = k + alpha * the sum of squares over adjacent maps."""
    return k + alpha * adjacent_sum(tf.square(a), size, groups)


@tf.function(jit_compile=True)
def _normalised(a, size, k, alpha, beta, groups):
    """b = a * u^-beta, in one pass over a."""
    return a * inverse_power(_denominator(a, size, k, alpha, groups), beta)


@tf.function(jit_compile=True)
def _gradient_over_denominator(a, g, size, k, alpha, beta, groups):
    """g * b / u, the part of dL/da that the neighbours share (u recomputed from a: cheaper than keeping it)."""
    u = _denominator(a, size, k, alpha, groups)
    return g * a * inverse_power(u, beta) / u


@tf.function(jit_compile=True)
def _input_gradient(a, g, shared, size, k, alpha, beta, groups):
    """dL/da = g * u^-beta - 2 alpha beta * a * (the sum of `shared` over adjacent maps)."""
    scale = inverse_power(_denominator(a, size, k, alpha, groups), beta)
    return g * scale - (2.0 * alpha * beta) * a * adjacent_sum(shared, size, groups)


def cross_map_norm(x, size, k, alpha, beta, groups=1):
    """b_i = a_i / (k + alpha * sum_{j within size/2 of i, same group} a_j^2)^beta over the last axis of x.

    With u = k + alpha * sum and s = u^-beta, the gradient is written out, dL/da = g * s - 2 alpha beta * a *
    sum_adjacent(g * b / u): the same numbers as tf.nn.local_response_normalization and its gradient
    (tests/test_layers.py), without its pow. Each of the three passes (the forward, and the gradient's two: its
    adjacent sum needs g * b / u of the neighbours) is one XLA-compiled function, which fuses the sum over
    adjacent maps, the powers and the products into a single read of the maps (XLA compiles for the device the
    tower's scope names). The gradient recomputes u from a rather than keeping it: one more read of a costs less
    than writing u in the forward pass and reading it back. python experiments/speed_trials.py --trial=lrn times
    this against the replica's earlier form (band matmuls with TensorFlow's elementwise ops).
    """
    constants = dict(size=size, k=float(k), alpha=float(alpha), beta=float(beta), groups=groups)

    @tf.custom_gradient
    def normalise(a):
        def gradient(g):
            return _input_gradient(a, g, _gradient_over_denominator(a, g, **constants), **constants)
        return _normalised(a, **constants), gradient
    return normalise(x)


POOLING_MODES = ("overlapping", "non-overlapping")


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
