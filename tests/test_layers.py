"""LRN against a direct numpy evaluation of the paper's formula (PAPER.md 3)."""
import numpy as np
import pytest
import tensorflow as tf

from replica.net import layers, speed_forms
from replica.perf import profiling
from replica import paper


def lrn_by_formula(a, alpha, n=5, k=2.0, beta=0.75):
    """b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, over the last axis."""
    maps = a.shape[-1]
    b = np.empty_like(a, dtype=np.float64)
    for i in range(maps):
        lo, hi = max(0, i - n // 2), min(maps - 1, i + n // 2)
        b[..., i] = a[..., i] / (k + alpha * np.sum(a[..., lo:hi + 1] ** 2, axis=-1)) ** beta
    return b


@pytest.mark.parametrize("mode,alpha", [("paper", 1e-4), ("cuda-convnet", 2e-5)])
def test_lrn_matches_the_formula(mode, alpha):
    a = np.random.default_rng(0).uniform(0, 30, (2, 3, 3, 16)).astype(np.float32)  # large: the sum matters
    got = layers.local_response_norm(tf.constant(a), mode).numpy()
    want = lrn_by_formula(a.astype(np.float64), alpha)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not np.allclose(got, a / paper.LRN_K ** paper.LRN_BETA, rtol=1e-3)  # the neighbours did count


def test_lrn_per_group_normalises_each_towers_maps_on_its_own():
    a = np.random.default_rng(1).uniform(0, 30, (1, 2, 2, 96)).astype(np.float32)
    got = layers.local_response_norm(tf.constant(a), "paper", groups=2).numpy()
    want = np.concatenate([lrn_by_formula(a[..., :48], 1e-4), lrn_by_formula(a[..., 48:], 1e-4)], -1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    across = layers.local_response_norm(tf.constant(a), "paper", groups=1).numpy()
    boundary = [46, 47, 48, 49]
    assert not np.allclose(across[..., boundary], got[..., boundary], rtol=1e-4)   # Caffe's LRN differs here
    np.testing.assert_allclose(across[..., :46], got[..., :46], rtol=1e-6)


def test_lrn_none_is_identity():
    a = tf.random.uniform([1, 2, 2, 8])
    assert layers.local_response_norm(a, "none") is a


def test_dropout_is_inverted_and_reproducible():
    x = tf.ones([1000, 64])
    seed = tf.constant([3, 4], tf.int64)
    a, b = layers.dropout(x, 0.5, seed).numpy(), layers.dropout(x, 0.5, seed).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 2.0}
    assert abs((a == 0).mean() - 0.5) < 0.01


@pytest.mark.parametrize("groups", [1, 2])
def test_lrn_gradient_matches_tensorflows_own(groups):
    """The hand-written gradient of the band-matmul LRN against autodiff of TensorFlow's LRN kernel."""
    a = tf.constant(np.random.default_rng(2).normal(0, 30, (2, 3, 3, 32)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(3).normal(0, 1, (2, 3, 3, 32)).astype(np.float32))
    def reference(x):
        return tf.concat([tf.nn.local_response_normalization(p, 2, 2.0, 1e-4, 0.75)
                          for p in tf.split(x, groups, axis=-1)], -1)
    grads = []
    for f in (reference, lambda x: layers.local_response_norm(x, "paper", groups)):
        with tf.GradientTape() as tape:
            tape.watch(a)
            loss = tf.reduce_sum(f(a) * weights)
        grads.append(tape.gradient(loss, a).numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-4, atol=1e-6 * np.abs(grads[0]).max())
    assert np.abs(grads[0] - weights.numpy() / 2.0 ** 0.75).max() > 1e-3   # the neighbours' term is not negligible


def bfloat16_lrn_and_gradient(a, g, groups, through_float32=False):
    """A bfloat16 net's LRN of `a` and its gradient for output gradient `g`, as float32 arrays; through_float32:
    the maps cast to float32, normalised and cast back."""
    def lrn(x):
        if through_float32:
            return tf.cast(layers.local_response_norm(tf.cast(x, tf.float32), "paper", groups), tf.bfloat16)
        return layers.local_response_norm(x, "paper", groups)
    with tf.GradientTape() as tape:
        tape.watch(a)
        b = lrn(a)
    grad = tape.gradient(b, a, output_gradients=g)
    assert b.dtype == grad.dtype == tf.bfloat16
    return b.numpy().astype(np.float32), grad.numpy().astype(np.float32)


@pytest.mark.parametrize("groups", [1, 2])
def test_lrn_of_bfloat16_maps_sums_by_band_matmuls_within_bfloat16_rounding(groups, monkeypatch):
    """A bfloat16 net's LRN sums its adjacent maps by band matmuls (speed_forms.band_sum): forward and backward
    within 2^-7 (two bfloat16 roundings) of the float32 LRN cast back. Without the band matmuls (the shifted slices,
    float16's form) it is exactly the float32 LRN cast back: the casts happen inside the compiled passes."""
    a = tf.constant(np.random.default_rng(5).uniform(0, 100, (2, 3, 3, 32)), tf.bfloat16)
    g = tf.constant(np.random.default_rng(6).normal(0, 1, (2, 3, 3, 32)), tf.bfloat16)
    want_b, want_grad = bfloat16_lrn_and_gradient(a, g, groups, through_float32=True)
    b, grad = bfloat16_lrn_and_gradient(a, g, groups)
    np.testing.assert_allclose(b, want_b, rtol=2 ** -7)
    np.testing.assert_allclose(grad, want_grad, rtol=0, atol=2 ** -7 * np.abs(want_grad).max())
    assert not np.array_equal(b, want_b)   # the band matmuls did the sums (their roundings differ)
    monkeypatch.setattr(speed_forms, "BAND_SUM_DTYPES", ())
    slices_b, slices_grad = bfloat16_lrn_and_gradient(a, g, groups)
    np.testing.assert_array_equal(slices_b, want_b)
    np.testing.assert_array_equal(slices_grad, want_grad)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("groups", [1, 2])
def test_the_relu_inside_the_lrn_is_the_relu_then_the_lrn(dtype, groups):
    """conv1's and conv2's ReLU applied by their LRN's passes: the same numbers, forward and backward (the ReLU's
    gradient included), as a ReLU op followed by the LRN."""
    z = tf.constant(np.random.default_rng(7).normal(0, 50, (2, 3, 3, 32)), dtype)   # half of it negative
    g = tf.constant(np.random.default_rng(8).normal(0, 1, (2, 3, 3, 32)), dtype)
    outputs = []
    for f in (lambda x: layers.rectified_response_norm(x, "paper", groups),
              lambda x: layers.local_response_norm(tf.nn.relu(x), "paper", groups)):
        with tf.GradientTape() as tape:
            tape.watch(z)
            b = f(z)
        outputs.append((b.numpy().astype(np.float32), tape.gradient(b, z, output_gradients=g).numpy()
                        .astype(np.float32)))
    (b, grad), (want_b, want_grad) = outputs
    assert (b == 0).mean() > 0.3 and (grad == 0).mean() > 0.3   # the negative half is cut, forward and backward
    np.testing.assert_array_equal(b, want_b)
    np.testing.assert_array_equal(grad, want_grad)
    np.testing.assert_array_equal(layers.rectified_response_norm(z, "none").numpy(), tf.nn.relu(z).numpy())


def towers_parts(x):
    """x's maps as two towers' parts (an exchange's input) and as the one tensor a plain layer reads."""
    return [x[..., :3], x[..., 3:]], x


def gradients_of(layer, inputs, weights, call=None):
    """d(sum(relu(call(inputs)) * weights)) / d(inputs, layer's kernel, bias), the inputs' as one array; `call`:
    the layer itself unless given."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.reduce_sum(tf.nn.relu((call or layer)(inputs)) * weights)
    grads = tape.gradient(loss, [inputs, layer.kernel, layer.bias])
    joined = np.concatenate([g.numpy() for g in grads[0]], -1) if isinstance(inputs, list) else grads[0].numpy()
    return [joined, grads[1].numpy(), grads[2].numpy()]


def test_dense_reads_both_towers_maps_flattened_and_gives_keras_own_gradients():
    """An fc layer reading both towers' pool5 (speed_forms.matmul: parts joined, flattened in NHWC order, backward
    through BatchMatMul, kernel gradient after the split) computes Keras' Dense of the flattened concatenation."""
    rng = np.random.default_rng(4)
    parts, x = towers_parts(tf.constant(rng.normal(size=(8, 2, 2, 10)).astype(np.float32)))
    ours = layers.dense("fc6", 24, input_gradient_first=True)
    ours.build([p.shape for p in parts])
    keras_dense = tf.keras.layers.Dense(24)
    keras_dense.build((8, 40))
    keras_dense.set_weights([rng.normal(size=(40, 24)).astype(np.float32), rng.normal(size=24).astype(np.float32)])
    ours.set_weights(keras_dense.get_weights())
    weights = tf.constant(rng.normal(size=(8, 24)).astype(np.float32))
    def flattened(x):
        return keras_dense(tf.reshape(x, [8, -1]))
    np.testing.assert_allclose(ours(parts).numpy(), flattened(x).numpy(), rtol=1e-5, atol=1e-5)
    for want, got in zip(gradients_of(keras_dense, x, weights, flattened), gradients_of(ours, parts, weights)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def executed_nodes(function):
    """{op type without the oneDNN prefix: node} of the graph the runtime executes (after grappler and the oneDNN
    rewrite) for a tf.function of no arguments."""
    metadata = profiling.run_metadata(function)
    return {node.op.replace("_MklNative", ""): node for graph in metadata.function_graphs
            for partition in graph.partition_graphs for node in partition.node}


@pytest.mark.parametrize("towers", [1, 2])
def test_conv_gradients_equal_keras_own_and_the_kernel_gradient_waits_for_each_towers_part(towers):
    """A conv layer with input_gradient_first (speed_forms.convolve_input_gradient_first) gives Keras' Conv2D
    gradients, and in a compiled step its kernel gradient waits for the input gradient, split into each tower's part
    when it reads two (the layer below and the other tower wait for those)."""
    rng = np.random.default_rng(5)
    parts, x = towers_parts(tf.constant(rng.normal(size=(2, 9, 9, 8)).astype(np.float32)))
    inputs = parts if towers == 2 else x
    ours = layers.conv("conv3", 6, 3, input_gradient_first=True)
    ours.build([p.shape for p in parts] if towers == 2 else x.shape)
    keras_conv = tf.keras.layers.Conv2D(6, 3, padding="same")
    keras_conv.build(x.shape)
    keras_conv.set_weights(ours.get_weights())
    weights = tf.constant(rng.normal(size=(2, 9, 9, 6)).astype(np.float32))
    for want, got in zip(gradients_of(keras_conv, x, weights), gradients_of(ours, inputs, weights)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    nodes = executed_nodes(tf.function(lambda: tf.gradients(tf.reduce_sum(ours(inputs) * weights),
                                                            tf.nest.flatten([inputs, ours.kernel]))))
    waits_for = nodes["SplitV" if towers == 2 else "Conv2DBackpropInput"]
    assert "^" + waits_for.name in nodes["Conv2DBackpropFilter"].input


def test_custom_gradients_traced_inside_are_forgotten_on_leaving():
    """speed_forms.custom_gradients_released: what a traced custom gradient registers globally (and with it the
    traced graph) is gone once the net's life is over, so an experiment's next variant does not keep this one."""
    from tensorflow.python.framework import ops
    from replica.net import speed_forms
    registry = ops._gradient_registry._registry
    before = set(registry)
    with speed_forms.custom_gradients_released():
        traced = tf.function(lambda x: speed_forms.cross_map_norm(x, 5, 2.0, 1e-4, 0.75))
        traced(tf.ones([1, 2, 2, 8]))
        assert any(name.startswith("CustomGradient-") for name in set(registry) - before)
    assert set(registry) == before


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16])
def test_bias_gradients_are_float32_sums_rounded_once(dtype):
    """speed_forms.column_sums, the bias gradient: a matmul with a row of ones whose sums are float32 whatever the
    maps' dtype. 4096 ones sum to 4096 (a running sum stops at 256 in bfloat16, 2048 in float16); random maps' sums
    are the exact sums rounded once to the maps' dtype."""
    ones = tf.ones([8, 16, 32, 3], dtype)
    np.testing.assert_array_equal(speed_forms.column_sums(ones).numpy().astype(np.float32), [4096.0] * 3)
    x = np.random.default_rng(9).normal(0, 1, (4, 9, 9, 64))
    got = speed_forms.column_sums(tf.constant(x, dtype)).numpy().astype(np.float64)
    exact = tf.constant(x, dtype).numpy().astype(np.float64).sum(axis=(0, 1, 2))
    relative = {tf.bfloat16: 2 ** -7, tf.float16: 2 ** -9, tf.float32: 1e-5}[dtype]
    np.testing.assert_allclose(got, exact, rtol=0, atol=relative * np.abs(exact).max())
