"""The two towers as one device's net: the same function, with the towers' kernels laid side by side.

`collapse_to_merged` gives the dense merged net (PAPER.md 2) whose kernels are block-diagonal where a tower saw
only its own maps (conv2, conv4, conv5), with LRN kept per tower (PAPER.md 1), so its logits equal the towers'.
`to_grouped` gives Caffe's grouped-convolution form. `copy_weights` moves weights between two nets of one design
(e.g. the same towers on two devices and on one).
"""
import numpy as np

from replica.net import model as model_lib



def own_tower_layers(model):
    """The layers that see only their own tower's maps, as the model is built (paper.TOPOLOGY)."""
    return tuple(layer.name for layer in model.built_layers if layer.sees == "own")


def block_diagonal(k0, k1):
    """A kernel whose output maps of tower i see only tower i's input maps: [..., in0+in1, out0+out1]."""
    *spatial, in0, out0 = k0.shape
    in1, out1 = k1.shape[-2:]
    kernel = np.zeros((*spatial, in0 + in1, out0 + out1), dtype=k0.dtype)
    kernel[..., :in0, :out0] = k0
    kernel[..., in0:, out0:] = k1
    return kernel


def side_by_side(k0, k1):
    """Both towers' output maps side by side, [tower 0, tower 1]: the order every exchange concatenates in."""
    return np.concatenate([k0, k1], axis=-1)


def single_device_weights(towers_model, grouped):
    """{layer: [kernel, bias]} of the merged (grouped=False) or grouped (True) net computing the towers' function."""
    if towers_model.design.towers != 2:
        raise ValueError("only a two-tower model can be collapsed")
    weights = {"fc8": towers_model.fc8.get_weights()}
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        (k0, b0), (k1, b1) = (towers_model.paper_layer(layer, t).get_weights() for t in (0, 1))
        own_only = layer in own_tower_layers(towers_model) and not grouped
        kernel = block_diagonal(k0, k1) if own_only else side_by_side(k0, k1)
        weights[layer] = [kernel, side_by_side(b0, b1)]
    return weights


def _single_device_copy(towers_model, towers, grouped, device):
    net = model_lib.build_model(
        towers, num_classes=towers_model.num_classes, devices=[device] if device else None,
        input_size=towers_model.geometry.input_size, lrn=towers_model.lrn, pooling=towers_model.pooling,
        activation=towers_model.activation, dropout_rate=towers_model.dropout_rate, lrn_groups=2)
    for layer, values in single_device_weights(towers_model, grouped).items():
        net.get_layer(layer).set_weights(values)
    return net


def collapse_to_merged(towers_model, device=None):
    """The merged single-device net (LRN per tower half) with the same logits as `towers_model`."""
    return _single_device_copy(towers_model, "merged", grouped=False, device=device)


def to_grouped(towers_model, device=None):
    """Caffe's grouped-convolution net (groups=2 in conv2, conv4, conv5) with the same logits."""
    return _single_device_copy(towers_model, "grouped", grouped=True, device=device)


def copy_weights(source, target):
    """Copy every weight of `source` into `target`, a net of the same design (any devices)."""
    for layer in source.layers:
        target.get_layer(layer.name).set_weights(layer.get_weights())
    return target


def lively_weights(model, seed=0):
    """Replace the paper's N(0, 0.01) weights by fan-in scaled ones, so every layer's output is far from zero
    and a comparison of logits can fail (with 0.01 the logits of a fresh net are all but constant)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        layer.set_weights([rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32),
                           rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    return model
