"""The paper's update rule (PAPER.md 3, paper 5), one compiled function per device: `PaperSGD`."""
import tensorflow as tf

from replica import paper


class PaperSGD:
    """v <- momentum * v - weight_decay * lr * w - lr * grad;  w <- w + v   (PAPER.md 3, paper 5).

    Keras' SGD(weight_decay=...) decays the weights outside the momentum, which is not this rule. Each velocity
    lives on its weight's device, so a tower's update never leaves its device.
    """

    def __init__(self, variables, momentum=paper.MOMENTUM, weight_decay=paper.WEIGHT_DECAY, decay_biases=False):
        self.variables = list(variables)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.decays = [weight_decay if (decay_biases or len(v.shape) > 1) else 0.0 for v in self.variables]
        self.velocities = []
        for var in self.variables:
            with tf.device(var.value.device):
                self.velocities.append(tf.Variable(tf.zeros(var.shape, var.dtype), trainable=False,
                                                   name=var.path.replace("/", "_") + "_velocity"))
        self.by_device = self._by_device()
        self.updates = {device: self._fused_update(indices) for device, indices in self.by_device.items()}

    def _by_device(self):
        """{device: indices of the variables that live there}: tower i's weights on tower i's device."""
        groups = {}
        for i, var in enumerate(self.variables):
            groups.setdefault(var.value.device, []).append(i)
        return groups

    def _fused_update(self, indices):
        """The rule for the variables at `indices` (all on one device), compiled by XLA into one pass over each
        weight: read w, v and the gradient, write w and v, instead of five memory-bound passes
        (docs/performance.md). XLA compiles a function for a single device, hence one function per device."""
        weights = [self.variables[i].value for i in indices]
        velocities = [self.velocities[i] for i in indices]
        decays = [self.decays[i] for i in indices]
        momentum = self.momentum

        @tf.function(jit_compile=True, autograph=False)
        def update(grads, learning_rate):
            for w, v, grad, decay in zip(weights, velocities, grads, decays):
                step = grad + decay * w if decay else grad
                new_v = momentum * v - learning_rate * step
                v.assign(new_v)
                w.assign_add(new_v)
        return update

    def apply(self, grads, learning_rate):
        """One update of every weight, each device's weights by its own compiled function on that device."""
        learning_rate = tf.convert_to_tensor(learning_rate, tf.float32)
        for device, indices in self.by_device.items():
            with tf.device(device):
                self.updates[device]([grads[i] for i in indices], learning_rate)
