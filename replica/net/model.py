"""AlexNet as the paper built it: two towers on two devices, and the nets it is compared with.

`build_model(towers=2)` builds both towers explicitly, one set of layers per tower (`conv1_0`, `conv1_1`, ...,
`fc7_1`, and one `fc8`), each tower's variables and ops on its own device; the towers exchange activations only
at conv3, fc6, fc7 and fc8 (PAPER.md 1, paper 3.2). `towers=1` is the paper's one-GPU baseline and
`towers="merged"` the dense single-device net (PAPER.md 2); `towers="grouped"` is Caffe's single-device form of
the two towers (grouped convolutions), the same function as `towers=2`.
"""
import contextlib
import dataclasses

import keras
import tensorflow as tf

from replica.net import layers as L
from replica import choices, paper
from replica.net import precision as precision_lib

@dataclasses.dataclass(frozen=True)
class Geometry:
    """How conv1 and the pools meet the input size; everything above conv1 is the paper's."""
    input_size: int
    conv1_kernel: int
    conv1_stride: int
    conv1_padding: str      # "valid" or "same"
    pool_padding: str       # "VALID", "SAME" or "CEIL" (Caffe's pooling: the last window may run past the edge)
    input_pad: int = 0      # zero rows/columns added at the bottom and right (224 + 3, PAPER.md 4)


def imagenet_geometry(input_size=paper.INPUT_SIZE):
    """227x227 input, or a 224 crop read with 3 zero pixels past its bottom/right edge (PAPER.md 4)."""
    if input_size not in (paper.INPUT_SIZE, paper.STATED_INPUT_SIZE):
        raise ValueError(f"the ImageNet geometry takes input_size {paper.INPUT_SIZE} or {paper.STATED_INPUT_SIZE}, "
                         f"not {input_size}")
    return Geometry(input_size, paper.CONV1_KERNEL, paper.CONV1_STRIDE, "valid", "VALID",
                    input_pad=paper.INPUT_SIZE - input_size)


def small_image_geometry(input_size=32):
    """32x32 inputs (CIFAR-10): conv1 5x5 stride 1 and 'same'-padded pools; maps 32, 16, 8, 4 (README)."""
    return Geometry(input_size, 5, 1, "same", "SAME")


def geometry_for(input_size):
    return small_image_geometry(input_size) if input_size < 100 else imagenet_geometry(input_size)


@dataclasses.dataclass(frozen=True)
class Design:
    """Which of the paper's nets: kernels per layer, towers, and how maps are grouped on one device."""
    towers: int
    widths: tuple
    conv_groups: int = 1    # Keras `groups` of conv2, conv4 and conv5 (Caffe's grouped net)
    lrn_groups: int = 1     # LRN normalises each group of maps on its own (each tower its own, PAPER.md 1)


def design_for(towers, lrn_groups=None):
    """The Design behind a `towers` choice; `lrn_groups` overrides the merged net's (for `collapse_to_merged`)."""
    if towers in (2, "2"):
        return Design(2, paper.TWO_TOWER_WIDTHS)
    if towers in (1, "1"):
        return Design(1, paper.ONE_GPU_WIDTHS)
    if towers == "merged":
        return Design(1, paper.MERGED_WIDTHS, lrn_groups=lrn_groups or 1)
    if towers == "grouped":
        return Design(1, paper.MERGED_WIDTHS, conv_groups=2, lrn_groups=2)
    raise ValueError(f"towers must be one of 2, 1, 'merged', 'grouped'; got {towers!r}")


def orders_gradients(devices):
    """Whether each layer after conv1 computes its input gradient before its kernel gradient
    (`speed_forms.convolve_input_gradient_first`): when the towers sit on two devices, whose exchanges wait for it.
    On one device the order costs time: python experiments/speed_trials.py --trial=gradient_order
    (experiments/README.md, speed)."""
    return devices is not None and len(set(devices)) > 1


DROPPABLE_LAYERS = (None,) + choices.DROPPABLE_LAYERS


class AlexNet(keras.Model):
    """The network of PAPER.md 1-2; `call` returns the fc8 logits, `endpoints` every named activation."""

    def __init__(self, design, geometry, devices=None, lrn="paper", pooling="overlapping", activation="relu",
                 dropout_rate=paper.DROPOUT_RATE, num_classes=paper.NUM_CLASSES, positive_bias=paper.POSITIVE_BIAS,
                 drop_layer=None, precision="float32", name="alexnet"):
        super().__init__(name=name)
        for setting, value, allowed in (("precision", precision, precision_lib.MODES),
                                        ("drop_layer", drop_layer, DROPPABLE_LAYERS), ("lrn", lrn, L.LRN_MODES),
                                        ("pooling", pooling, L.POOLING_MODES),
                                        ("activation", activation, L.ACTIVATIONS)):
            choices.require_one_of(setting, value, allowed)
        if devices is not None and len(devices) != design.towers:
            raise ValueError(f"{design.towers} tower(s) need {design.towers} device name(s), got {devices}")
        self.design, self.geometry, self.devices = design, geometry, list(devices) if devices else None
        self.lrn, self.pooling, self.activation = lrn, pooling, activation
        self.dropout_rate, self.num_classes, self.positive_bias = dropout_rate, num_classes, positive_bias
        self.drop_layer, self.precision = drop_layer, precision
        self.batch_shard = (0, 1)   # (worker, workers): which rows of the global batch this model sees
        policy = precision_lib.layer_policy(precision)
        b = dict(positive_bias=positive_bias, precision=policy,
                 input_gradient_first=orders_gradients(self.devices))
        widths = dict(zip(paper.LAYER_NAMES, design.widths))
        for t in range(design.towers):
            for layer in self.built_layers[:-1]:   # fc8 is one layer
                name = self.layer_name(layer.name, t)
                if layer.name == "conv1":   # its kernel and stride follow the input geometry; it reads the image
                    keras_layer = L.conv("conv1", widths["conv1"], geometry.conv1_kernel, geometry.conv1_stride,
                                         geometry.conv1_padding, name=name, precision=policy)
                elif layer.kind == "conv":
                    groups = design.conv_groups if layer.sees == "own" else 1
                    keras_layer = L.conv(layer.name, widths[layer.name], layer.kernel, groups=groups, name=name, **b)
                else:
                    keras_layer = L.dense(layer.name, widths[layer.name], name=name, **b)
                setattr(self, name, keras_layer)
        self.fc8 = L.dense("fc8", num_classes, name="fc8", **b)

    # --- names and places -------------------------------------------------------------------------------------
    def layer_name(self, layer, tower):
        """The paper's name with the tower as suffix (`conv1_0`), or the bare name in a one-tower net."""
        return layer if self.design.towers == 1 or layer == "fc8" else f"{layer}_{tower}"

    def paper_layer(self, layer, tower):
        return self.get_layer(self.layer_name(layer, tower))

    def tower_device(self, tower):
        """Tower i's device (fc8 sits on tower 0's, as in cuda-convnet2), or None: TensorFlow's default."""
        return self.devices[tower] if self.devices else None

    def on_tower(self, tower):
        device = self.tower_device(tower)
        return tf.device(device) if device else contextlib.nullcontext()

    @property
    def lrn_groups(self):
        """Groups of maps each LRN normalises within: Caffe's LRN spans all maps, the paper's each tower's own."""
        return 1 if self.lrn == "caffe" else self.design.lrn_groups

    @property
    def relu_inside_lrn(self):
        """Whether conv1's and conv2's ReLU is computed inside their LRN's passes (the same numbers, two passes
        over the maps fewer each way: docs/performance.md): a ReLU net whose LRN stays within each tower."""
        return self.activation == "relu" and self.lrn in ("paper", "cuda-convnet")

    @property
    def towers(self):
        return range(self.design.towers)

    @property
    def built_layers(self):
        """paper.TOPOLOGY as built: without the dropped layer, whose exchange (if it had one) moves to the next
        layer, so the towers still meet once between pool2 and pool5."""
        layers = list(paper.TOPOLOGY)
        if self.drop_layer:
            k = paper.LAYER_NAMES.index(self.drop_layer)
            if layers[k].sees == "both":
                layers[k + 1] = dataclasses.replace(layers[k + 1], sees="both")
            del layers[k]
        return tuple(layers)

    @property
    def paper_layers(self):
        """conv1 ... fc8 as built (without the dropped layer)."""
        return tuple(layer.name for layer in self.built_layers)

    @property
    def exchange_layers(self):
        """The layers that see both towers' maps: conv3, fc6, fc7, fc8 (paper.TOPOLOGY)."""
        return tuple(layer.name for layer in self.built_layers if layer.sees == "both")

    def input_of(self, layer):
        """The endpoint a layer reads: the layer before it, after its pooling (pool2 for conv3, pool5 for fc6)."""
        names = self.paper_layers
        below = paper.LAYERS[names[names.index(layer) - 1]]
        return f"pool{below.name[-1]}" if below.pool else below.name

    # --- the forward pass -------------------------------------------------------------------------------------
    def build(self, input_shape):
        # Build every layer eagerly inside its tower's device scope, so each variable is created on that device
        # (Keras would otherwise build them in a scratch graph whose variables ignore tf.device).
        size = self.geometry.input_size
        self.endpoints(tf.zeros([1, size, size, 3]))

    def call(self, images, training=False, dropout_seed=None):
        return self.endpoints(images, training=training, dropout_seed=dropout_seed)["fc8"]

    def endpoints(self, images, training=False, dropout_seed=None):
        """Every named activation, in order: `conv1_0` (after the non-linearity), `pool1_0`, ..., `fc8` (logits).

        `dropout_seed` (shape [2] int) draws the dropout masks statelessly when training.
        """
        act = L.activation(self.activation)
        out = {}
        if training and self.dropout_rate > 0 and dropout_seed is None:
            dropout_seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)

        def convolve(layer, t, x, rectified_by_lrn=False):
            """The layer's activation (also its endpoint); with `rectified_by_lrn`, its output before the ReLU,
            which the LRN after it applies as it reads (L.rectified_response_norm)."""
            with self.on_tower(t):
                z = self.paper_layer(layer, t)(x)
                out[self.layer_name(layer, t)] = act(z)
                return z if rectified_by_lrn else out[self.layer_name(layer, t)]

        def normalise(layer, t, xs, rectify=False):
            """LRN of tower t's maps: within the tower (the paper), or, for Caffe's LRN, across both towers' maps,
            which takes an exchange: tower t normalises both towers' maps side by side and keeps its own half.
            rectify: xs are the convolutions' outputs before their ReLU, applied here."""
            with self.on_tower(t), tf.name_scope(self.layer_name("norm" + layer[-1], t)):   # Caffe's norm1/norm2
                if self.lrn == "caffe" and len(xs) > 1:
                    width = xs[t].shape[-1]
                    return L.local_response_norm(tf.concat(xs, -1), "caffe")[..., t * width:(t + 1) * width]
                if rectify:
                    return L.rectified_response_norm(xs[t], self.lrn, self.lrn_groups)
                return L.local_response_norm(xs[t], self.lrn, self.lrn_groups)

        def pool(layer, t, x):
            with self.on_tower(t):
                x = L.max_pool(x, self.pooling, self.geometry.pool_padding)
                out[self.layer_name("pool" + layer[-1], t)] = x
                return x

        def fc_block(layer, t, x, index):
            with self.on_tower(t):
                x = act(self.paper_layer(layer, t)(x))
                out[self.layer_name(layer, t)] = x
                if training and self.dropout_rate > 0:
                    seed = tf.random.experimental.stateless_fold_in(tf.cast(dropout_seed, tf.int64), 10 * t + index)
                    x = L.dropout(x, self.dropout_rate, seed, self.batch_shard)
                return x

        pad = self.geometry.input_pad
        xs = []
        for t in self.towers:
            with self.on_tower(t):
                xs.append(tf.pad(images, [[0, 0], [0, pad], [0, pad], [0, 0]]) if pad else images)
        for layer in self.built_layers[:-1]:   # conv1 ... fc7 of every tower, top to bottom (paper.TOPOLOGY)
            seen = [xs if layer.sees == "both" else xs[t] for t in self.towers]   # both: joined by the layer
            if layer.kind == "conv":
                fused = layer.lrn and self.relu_inside_lrn   # the ReLU applied by the LRN's passes
                xs = [convolve(layer.name, t, seen[t], fused) for t in self.towers]
                if layer.lrn:
                    xs = [normalise(layer.name, t, xs, fused) for t in self.towers]
                if layer.pool:
                    xs = [pool(layer.name, t, xs[t]) for t in self.towers]
                continue
            xs = [fc_block(layer.name, t, seen[t], int(layer.name[2:])) for t in self.towers]
        with self.on_tower(0):
            out["fc8"] = tf.cast(self.fc8(xs), tf.float32)   # the softmax and loss in float32
        return out


def build_model(towers=2, num_classes=paper.NUM_CLASSES, devices=None, input_size=paper.INPUT_SIZE, lrn="paper",
                pooling="overlapping", activation="relu", dropout_rate=paper.DROPOUT_RATE, lrn_groups=None,
                positive_bias=paper.POSITIVE_BIAS, drop_layer=None, precision="float32", name=None):
    """Build one of the paper's nets and create its variables on their devices.

    towers: 2 (the paper's two towers), 1 (the one-GPU baseline), "merged" (dense single-device net) or
      "grouped" (the two towers as grouped convolutions on one device).
    devices: one device name per tower (see `replica.net.devices`), or None for TensorFlow's default placement.
    input_size: 227 (default), 224 (a 224 crop read with 3 zero pixels past its edge, PAPER.md 4), or a small
      size such as 32, which selects the small-image geometry (conv1 5x5/1, 'same' pools).
    lrn: "paper" (k 2, alpha 1e-4, within each tower), "cuda-convnet" (alpha 1e-4 / 5), "caffe" (k 1, alpha
      1e-4 / 5, across both towers' maps: bvlc_alexnet's, an extra exchange after conv1 and conv2 in the two
      towers) or "none" (PAPER.md 3).
    pooling: "overlapping" (3/2) or "non-overlapping" (2/2).
    lrn_groups: the merged net's LRN groups (2 normalises each tower's half on its own; used by the collapse).
    positive_bias: the initial bias of conv2, conv4, conv5, fc6, fc7 (paper 1; Caffe 0.1).
    drop_layer: None, "conv3" or "conv4": the net without that layer (paper 7, experiment 9). Without conv3, conv4
      sees both towers' pool2 (the towers still meet once in the conv stack); without conv4, conv5 sees conv3.
    precision: a mode of replica.net.precision: "float32" (the paper), "tf32", "mixed_bfloat16" (bfloat16 convolutions,
      matmuls and exchanges; float32 weights, LRN, softmax and loss) or "mixed_float16" (the same in float16; train
      it with dynamic loss scaling, as replica.training.train does).
    """
    design = design_for(towers, lrn_groups)
    model = AlexNet(design, geometry_for(input_size), devices=devices, lrn=lrn, pooling=pooling,
                    activation=activation, dropout_rate=dropout_rate, num_classes=num_classes,
                    positive_bias=positive_bias, drop_layer=drop_layer, precision=precision,
                    name=name or f"alexnet_{towers}")
    model.build((None, input_size, input_size, 3))
    return model
