"""One training step of the paper's recipe, compiled: forward with dropout, softmax cross-entropy, gradients on
each tower's own device, and the update (skipped when the loss or the gradients are not finite)."""
import tensorflow as tf

from replica.training import evaluate as evaluate_lib


def set_determinism(seed, deterministic):
    """Seed Python, NumPy and TensorFlow; with `deterministic`, ask TensorFlow for deterministic kernels too."""
    import keras
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def softmax_cross_entropy(logits, labels):
    """The mean multinomial logistic regression loss (paper 4.1's objective)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                                         logits=logits))


def make_train_step(model, optimizer, seed=0, grad_reducer=None, jit_compile=False, loss_scale=None,
                    network_input=None):
    """A compiled step: (images, labels, step, learning_rate) -> (loss, top-1 err, top-5 err, applied).

    The update is skipped (applied False) when the loss or the gradients are not finite.
    grad_reducer: None, or (grads, loss) -> (grads, loss) averaged across workers.
    loss_scale: None, or a replica.net.precision.LossScale (float16 maps): the gradients are taken of the scaled loss
      and unscaled; a step whose gradients overflow is skipped and adjusts the scale.
    network_input: None, or the data's `network_input` (images as the input pipeline yields them -> the float
      images the net takes), run first, on tower 0's device.
    """
    variables = model.trainable_variables

    @tf.function(jit_compile=jit_compile, autograph=False)
    def train_step(images, labels, step, learning_rate):
        dropout_seed = tf.stack([tf.constant(seed, tf.int64), step])
        if network_input is not None:
            with model.on_tower(0):
                images = network_input(images)
        logits = model(images, training=True, dropout_seed=dropout_seed)
        with model.on_tower(0):   # fc8 and the loss sit on tower 0's device
            loss = softmax_cross_entropy(logits, labels)
            top1, top5 = evaluate_lib.batch_errors(logits, labels)
            scaled = loss if loss_scale is None else loss * loss_scale.scale
        # tf.gradients puts each gradient op on its forward op's device: tower i's backward stays on device i
        grads = tf.gradients(scaled, variables)
        if loss_scale is not None:
            grads = [g / loss_scale.scale for g in grads]
        if grad_reducer is not None:
            grads, loss = grad_reducer(grads, loss)
        grads_finite = tf.math.is_finite(tf.linalg.global_norm(grads))
        finite = tf.math.is_finite(loss) & grads_finite
        if loss_scale is not None:
            loss_scale.update(grads_finite)

        def update():
            optimizer.apply(grads, learning_rate)
            return tf.constant(True)

        applied = tf.cond(finite, update, lambda: tf.constant(False))
        batch = tf.cast(tf.shape(labels)[0], tf.float32)
        return loss, top1 / batch, top5 / batch, applied

    return train_step
