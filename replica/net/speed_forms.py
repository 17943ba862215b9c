"""The speed forms: the same numbers as the paper's layers (replica/net/layers.py), computed in the forms that run fast.

- `matmul`: the fc layers' x @ w whose input gradient dy @ w^T goes through BatchMatMul;
- `convolve_input_gradient_first`: a convolution whose backward pass computes the input gradient (on the step's
  critical path) before the kernel gradient;
- `bias_add`: a bias whose gradient is a matmul with a row of ones (`column_sums`), not the fused BiasAddGrad;
- `Dense`, `Conv2D`: Keras' layers with those backward passes, which at an exchange read the towers' maps as a
  list of parts and `join` them, so that their backward pass cuts each tower's part of the input gradient
  (`split_gradient`) before the kernel gradient;
- `cross_map_norm`: the LRN as three XLA-compiled passes, its gradient written out, with the ReLU before it
  computed inside them (`rectified_cross_map_norm`); in bfloat16 its sums over adjacent maps are band matmuls
  (`band_sum`).

Each form's gain, and the command that measures it again, is in docs/performance.md. `FORMS` is the one seam
through which experiments/speed_trials.py swaps a form for its alternatives; tests/test_layers.py checks every form
against TensorFlow's plain ops. `custom_gradients_released` frees what their gradients keep after a net is done with.
"""
import contextlib

import keras
import numpy as np
import tensorflow as tf


@contextlib.contextmanager
def custom_gradients_released():
    """Forget, on leaving, the gradients that tf.custom_gradient registered inside: traced in a tf.function, each of
    these forms registers its gradient under a new name in TensorFlow's global registry and never removes it, and
    the closure holds the traced graph and through it every weight of the net. A process that trains one net never
    notices; one that trains several (an experiment's variants, a test worker) kept every earlier net's weights,
    about 300 MB a 32x32 net. Use around a net's whole life: its functions are traced by the end."""
    from tensorflow.python.framework import ops
    registry = ops._gradient_registry._registry   # no public API removes a registered gradient
    before = set(registry)
    try:
        yield
    finally:
        for name in set(registry) - before:
            if name.startswith("CustomGradient-"):
                del registry[name]


def batch_matmul_input_gradient(dy, w):
    """dy @ w^T as a BatchMatMul of a batch of one: the same sums as MatMul with transpose_b, faster in oneDNN."""
    return tf.linalg.matmul(dy[tf.newaxis], w[tf.newaxis], transpose_b=True)[0]


FORMS = {"fc_input_gradient": batch_matmul_input_gradient,   # read when a step is traced
         "kernel_gradient_waits_for": lambda input_gradient, parts: parts,   # each tower's part, cut and sent
         "relu_then_lrn": lambda x, *constants: rectified_cross_map_norm(x, *constants)}


def join(parts, rows=False):
    """What a layer that sees both towers reads (conv3, fc6, fc7, fc8; paper 3.2): the towers' maps side by side,
    [tower 0, tower 1] over the last axis; with `rows`, flattened to one row an image in NHWC order (fc6 reads
    pool5). One part is read as it is."""
    x = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    return tf.reshape(x, [tf.shape(x)[0], -1]) if rows and x.shape.rank > 2 else x


def split_gradient(dx, parts):
    """The gradient of `join(parts)` as each part's: what goes back to each tower from an exchange."""
    if len(parts) == 1:
        return [tf.reshape(dx, tf.shape(parts[0])) if dx.shape.rank != parts[0].shape.rank else dx]
    widths = [part.shape[-1] for part in parts]
    joined_shape = tf.concat([tf.shape(parts[0])[:-1], [sum(widths)]], 0)
    return tf.split(tf.reshape(dx, joined_shape), widths, axis=-1)


def matmul(parts, w, input_gradient_first=False):
    """join(parts, rows=True) @ w, whose input gradient dy @ w^T goes through BatchMatMul (a batch of one) rather
    than MatMul: the same sums, but oneDNN's MatMul multiplies by a transposed weight slowly (docs/performance.md).
    input_gradient_first: the weight gradient waits for the input gradient, split into each tower's part (see
    `convolve_input_gradient_first`)."""
    @tf.custom_gradient
    def product(w, *parts):
        x = join(parts, rows=True)

        def gradient(dy):
            dx = FORMS["fc_input_gradient"](dy, w)
            dparts = split_gradient(dx, parts)
            with tf.control_dependencies(FORMS["kernel_gradient_waits_for"](dx, dparts) if input_gradient_first
                                         else []):
                return (tf.matmul(x, dy, transpose_a=True), *dparts)
        return tf.matmul(x, w), gradient
    return product(w, *parts)


def convolve_input_gradient_first(parts, kernel, strides, padding):
    """tf.nn.conv2d (NHWC) of join(parts), whose backward pass computes the input gradient, and splits it into each
    tower's part, before the kernel gradient.

    The input gradient is on the step's critical path: the layer below waits for it, and at an exchange (conv3,
    fc6, fc7) so does the other tower's device, while the kernel gradient is needed only by the update at the
    end. Left to itself, a device's executor may run the kernel gradient first and keep the other device waiting,
    the more so when the other tower's part is cut from the input gradient by a separate op. On one device the
    order costs time (the two may run side by side), so `model.orders_gradients` asks for it only when the towers
    sit on two devices (docs/performance.md). Not for a net's first layer, whose input gradient nobody needs."""
    strides, padding = [1, *strides, 1], padding.upper()

    @tf.custom_gradient
    def convolve(kernel, *parts):
        x = join(parts)

        def gradient(dy):
            input_shape, kernel_shape = tf.shape(x), tf.shape(kernel)   # outside the order, so that it binds
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=input_shape, filter=kernel, out_backprop=dy,
                                                strides=strides, padding=padding)
            dparts = split_gradient(dx, parts)
            # the kernel gradient itself, not only an input of it, waits
            with tf.control_dependencies(FORMS["kernel_gradient_waits_for"](dx, dparts)):
                return (tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=kernel_shape, out_backprop=dy,
                                                        strides=strides, padding=padding), *dparts)
        return tf.nn.conv2d(x, kernel, strides, padding), gradient
    return convolve(kernel, *parts)


@tf.custom_gradient
def bias_add(x, bias):
    """x + bias over the last axis, whose bias gradient is `column_sums` of dy instead of BiasAddGrad.

    Forward it is still a BiasAdd, which the runtime fuses with the convolution and the ReLU. Backward, TensorFlow
    would fuse BiasAddGrad into the kernel gradient (oneDNN's Conv2DBackpropFilterWithBias), which runs conv1's
    kernel gradient at a fraction of the rate of the unfused one (docs/performance.md)."""
    def gradient(dy):
        return dy, tf.cast(column_sums(dy), bias.dtype)
    return tf.nn.bias_add(x, bias), gradient


def column_sums(x):
    """The sum of x over all but its last axis, as a matmul of a row of ones with x's rows (one row a pixel): the
    products and sums are float32 on the matmul units whatever x's dtype (AMX on the CPU, tensor cores on a GPU),
    rounded once to x's dtype; a bfloat16 x is read as it is, without a float32 copy for Sum (the step's gain:
    `--trial=bias_gradient`)."""
    rows = tf.reshape(x, [-1, x.shape[-1]])
    return tf.linalg.matmul(tf.ones([1, tf.shape(rows)[0]], x.dtype), rows)[0]


def as_parts(inputs):
    """A layer's input as a list of parts: the towers' maps at an exchange, or one tensor."""
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def joined_shape(input_shape, rows=False):
    """The shape of `join` of parts of these shapes (a list of shapes, or one shape)."""
    one = input_shape[0] is None or isinstance(input_shape[0], int)
    shapes = [tuple(input_shape)] if one else [tuple(s) for s in input_shape]
    shape = (*shapes[0][:-1], sum(s[-1] for s in shapes))
    return (shape[0], int(np.prod(shape[1:]))) if rows and len(shape) > 2 else shape


class Dense(keras.layers.Dense):
    """Keras' Dense with the faster backward passes of `matmul` and `bias_add`, reading a list of the towers'
    parts at an exchange (joined, and flattened to rows: `join`). No activation, LoRA or quantisation: not used."""

    def __init__(self, *args, input_gradient_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_gradient_first = input_gradient_first
        self.input_spec = None   # Keras' spec describes one tensor, not the parts

    def build(self, input_shape):
        super().build(joined_shape(input_shape, rows=True))
        self.input_spec = None

    def call(self, inputs, training=None):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        return bias_add(matmul(as_parts(inputs), kernel, self.input_gradient_first), bias)


class Conv2D(keras.layers.Conv2D):
    """Keras' Conv2D (grouped too) with the faster backward pass of `bias_add`, and with
    `input_gradient_first` (ungrouped only) that of `convolve_input_gradient_first`; reads a list of the towers'
    parts at an exchange (joined: `join`)."""

    def __init__(self, *args, input_gradient_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_gradient_first = input_gradient_first and self.groups == 1
        self.input_spec = None   # Keras' spec describes one tensor, not the parts

    def build(self, input_shape):
        super().build(joined_shape(input_shape))
        self.input_spec = None

    def call(self, inputs):
        kernel, bias = tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias)   # (cast when mixed)
        if self.input_gradient_first:
            convolved = convolve_input_gradient_first(as_parts(inputs), kernel, self.strides, self.padding)
        else:
            convolved = self.convolution_op(join(as_parts(inputs)), kernel)
        return bias_add(convolved, bias)


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


def adjacent_maps(maps, size, groups=1, dtype=tf.float32):
    """The maps x maps 0/1 band matrix whose column i selects the `size` maps centred on map i within i's group."""
    index = np.arange(maps)
    group = index // (maps // groups)
    near = np.abs(index[:, None] - index[None, :]) <= size // 2
    return tf.constant(near & (group[:, None] == group[None, :]), dtype)


def band_sum(x, size, groups=1):
    """adjacent_sum as a matmul of the maps, one row a pixel, with the band matrix: in bfloat16 on the matmul units,
    whose products and sums are float32 (AMX on the CPU, tensor cores on a GPU), rounded to bfloat16 once."""
    maps = x.shape[-1]
    rows = tf.linalg.matmul(tf.reshape(x, [-1, maps]), adjacent_maps(maps, size, groups, x.dtype))
    return tf.reshape(rows, tf.shape(x))


# The dtypes whose LRN sums its adjacent maps by band matmuls: in bfloat16 the two band matmuls and the passes
# around them take about 0.8x the time of the shifted slices (`--trial=lrn_band`); in float32 the band matmuls are
# slower (`--trial=lrn`); float16's band form has not been measured.
BAND_SUM_DTYPES = (tf.bfloat16,)


def _denominator(a, sums, size, k, alpha, groups):
    """u = k + alpha * the sum of squares over adjacent maps, summed here by shifted slices or, when `sums` is
    given, by the band matmul (`sums` = band_sum(alpha * a^2))."""
    if sums is not None:
        return k + tf.cast(sums, tf.float32)
    return k + alpha * adjacent_sum(tf.square(a), size, groups)


def _maps(x, rectify):
    """The LRN's input in float32: x, or relu(x) when the ReLU before the LRN is computed inside its passes."""
    x32 = tf.cast(x, tf.float32)
    return tf.nn.relu(x32) if rectify else x32


@tf.function(jit_compile=True, autograph=False)
def _scaled_squares(x, alpha, rectify):
    """alpha * a^2 in x's dtype: what the band matmul sums."""
    return tf.cast(alpha * tf.square(_maps(x, rectify)), x.dtype)


@tf.function(jit_compile=True, autograph=False)
def _normalised(x, sums, size, k, alpha, beta, groups, rectify):
    """b = a * u^-beta, in one pass over x, computed in float32 and returned in x's dtype."""
    a32 = _maps(x, rectify)
    return tf.cast(a32 * inverse_power(_denominator(a32, sums, size, k, alpha, groups), beta), x.dtype)


@tf.function(jit_compile=True, autograph=False)
def _gradient_over_denominator(x, g, sums, size, k, alpha, beta, groups, rectify):
    """g * b / u, the part of dL/da that the neighbours share (u recomputed from a, cheaper than keeping it, or
    from the band matmul's sums, kept); in float32, or in x's dtype for the band matmul that sums it."""
    a32 = _maps(x, rectify)
    u = _denominator(a32, sums, size, k, alpha, groups)
    shared = tf.cast(g, tf.float32) * a32 * inverse_power(u, beta) / u
    return shared if sums is None else tf.cast(shared, x.dtype)


@tf.function(jit_compile=True, autograph=False)
def _input_gradient(x, g, shared, sums, size, k, alpha, beta, groups, rectify):
    """dL/da = g * u^-beta - 2 alpha beta * a * (the sum of `shared` over adjacent maps; with `sums`, `shared` is
    that sum already, from the band matmul), in x's dtype; with `rectify`, dL/dx: dL/da where x > 0, else 0 (the
    ReLU's gradient)."""
    a32 = _maps(x, rectify)
    scale = inverse_power(_denominator(a32, sums, size, k, alpha, groups), beta)
    shared_sum = adjacent_sum(shared, size, groups) if sums is None else tf.cast(shared, tf.float32)
    gradient = tf.cast(g, tf.float32) * scale - (2.0 * alpha * beta) * a32 * shared_sum
    if rectify:
        gradient = tf.where(tf.cast(x, tf.float32) > 0, gradient, 0.0)
    return tf.cast(gradient, x.dtype)


def cross_map_norm(x, size, k, alpha, beta, groups=1, rectify=False):
    """b_i = a_i / (k + alpha * sum_{j within size/2 of i, same group} a_j^2)^beta over the last axis of x.

    With u = k + alpha * sum and s = u^-beta, the gradient is written out, dL/da = g * s - 2 alpha beta * a *
    sum_adjacent(g * b / u): the same numbers as tf.nn.local_response_normalization and its gradient
    (tests/test_layers.py), without its pow. Each of the three passes (the forward, and the gradient's two: its
    adjacent sum needs g * b / u of the neighbours) is one XLA-compiled function, which fuses the sum over
    adjacent maps, the powers and the products into a single read of the maps (XLA compiles for the device the
    tower's scope names). The gradient recomputes u from a rather than keeping it: one more read of a costs less
    than writing u in the forward pass and reading it back. python experiments/speed_trials.py --trial=lrn times
    this against the replica's earlier form (band matmuls with TensorFlow's elementwise ops).

    Whatever x's dtype, the arithmetic is float32 (in bfloat16, a running sum of 5 squares of activations in the
    hundreds would lose too much in its 8-bit mantissa): the passes cast on reading and writing, so a bfloat16
    net's maps are never written out in float32 around the LRN. In bfloat16 (BAND_SUM_DTYPES) the two sums over
    adjacent maps are band matmuls instead (`band_sum`), whose products and sums are float32 too: the squares and
    the sums are rounded to bfloat16 once each, the same error as the output's own rounding (tests/test_layers.py);
    the forward pass keeps the sums of squares for the gradient.

    rectify: x is the convolution's output and a = relu(x) (paper 3.3: the ReLU, then the LRN); each pass applies
    the ReLU, and the gradient its mask, as it reads x: the same numbers as a ReLU op before the LRN, without the
    ReLU's own pass over the maps and its gradient's (`rectified_cross_map_norm`).
    """
    constants = dict(size=size, k=float(k), alpha=float(alpha), beta=float(beta), groups=groups, rectify=rectify)
    by_band = x.dtype in BAND_SUM_DTYPES

    @tf.custom_gradient
    def normalise(a):
        sums = band_sum(_scaled_squares(a, constants["alpha"], rectify), size, groups) if by_band else None

        def gradient(g):
            shared = _gradient_over_denominator(a, g, sums, **constants)
            return _input_gradient(a, g, band_sum(shared, size, groups) if by_band else shared, sums, **constants)
        return _normalised(a, sums, **constants), gradient
    return normalise(x)


def rectified_cross_map_norm(x, size, k, alpha, beta, groups=1):
    """The LRN of relu(x), the ReLU computed inside the LRN's passes (`cross_map_norm(rectify=True)`)."""
    return cross_map_norm(x, size, k, alpha, beta, groups, rectify=True)
