"""The per-layer table: output shape, neurons, parameters, multiply-adds, device and cross-tower bytes.

Checked against the paper's figures (PAPER.md 1): 60,965,224 parameters, 724.4 M multiply-adds, the Fig. 2
neuron list (whose first entry, 253,440, is inconsistent with 55x55x96 = 290,400) and 234,496 bytes exchanged
between the towers per image.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from replica import paper

BYTES_PER_FLOAT = 4


@dataclasses.dataclass
class LayerRow:
    name: str            # Keras layer name (conv1_0, ..., fc8)
    layer: str           # the paper's name (conv1, ..., fc8)
    tower: int
    output_shape: tuple  # per image
    neurons: int
    params: int
    macs: int            # forward multiply-adds per image
    device: str
    bytes_in: int        # bytes per image this layer receives from the other tower (forward)
    crosses_device: bool


def short_device(name):
    return name.split("/device:")[-1] if name else "default"


def conv_macs(kernel_shape, output_shape):
    """Multiply-adds of a convolution: every output value costs kh * kw * (input maps of its group)."""
    kh, kw, cin_per_group, _ = kernel_shape
    return int(np.prod(output_shape)) * kh * kw * cin_per_group


def received_from_other_tower(model, layer, tower, inputs):
    """Floats per image that `layer` of `tower` reads from the other tower's maps at an exchange point."""
    if model.design.towers == 1 or layer not in model.exchange_layers:
        return 0
    if layer == "fc8":   # fc8 sits on tower 0: it reads tower 1's fc7 output
        return int(np.prod(inputs[model.layer_name("fc7", 1)].shape[1:]))
    return int(np.prod(inputs[model.layer_name(model.input_of(layer), 1 - tower)].shape[1:]))


def layer_table(model):
    """One LayerRow per Keras layer, from a forward pass on one image and the layers' own weights."""
    size = model.geometry.input_size
    ends = model.endpoints(tf.zeros([1, size, size, 3]))
    rows = []
    for layer in model.paper_layers:
        for tower in ([0] if layer == "fc8" else model.towers):
            keras_layer = model.paper_layer(layer, tower)
            name = keras_layer.name
            out_shape = tuple(ends[name].shape[1:])
            kernel = keras_layer.kernel
            if layer.startswith("conv"):
                macs = conv_macs(kernel.shape, out_shape)
            else:
                macs = int(kernel.shape[0] * kernel.shape[1])
            floats_in = received_from_other_tower(model, layer, tower, ends)
            device = model.tower_device(tower) or ""
            other = model.tower_device(1 - tower if layer != "fc8" else 1) if model.design.towers == 2 else device
            rows.append(LayerRow(name, layer, tower, out_shape, int(np.prod(out_shape)), keras_layer.count_params(),
                                 macs, short_device(kernel.value.device), floats_in * BYTES_PER_FLOAT,
                                 bool(floats_in) and other != device))
    return rows


def neurons_per_paper_layer(rows):
    """Neurons of conv1..fc8 summed over the towers: the Fig. 2 caption's list."""
    return [sum(r.neurons for r in rows if r.layer == layer) for layer in paper.LAYER_NAMES]


def format_table(rows, towers_label):
    """The table as text, with totals beside the paper's figures."""
    header = f"{'layer':<8} {'output':>14} {'neurons':>10} {'params':>12} {'MACs/img':>13} {'device':>8} {'B/img in':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(map(str, r.output_shape))
        marker = "*" if r.crosses_device else " "
        lines.append(f"{r.name:<8} {shape:>14} {r.neurons:>10,} {r.params:>12,} {r.macs:>13,} {r.device:>8} "
                     f"{r.bytes_in:>8,}{marker}")
    lines.append("-" * len(header))
    params = sum(r.params for r in rows)
    neurons = sum(r.neurons for r in rows)
    macs = sum(r.macs for r in rows)
    exchanged = sum(r.bytes_in for r in rows)
    crossing = sum(r.bytes_in for r in rows if r.crosses_device)
    lines.append(f"{'total':<8} {'':>14} {neurons:>10,} {params:>12,} {macs:>13,} {'':>8} {exchanged:>9,}")
    lines.append("")
    paper_params = paper.PARAMS.get(str(towers_label))
    if paper_params:
        verdict = "matches" if paper_params == params else "DIFFERS from"
        lines.append(f"parameters: {params:,} {verdict} PAPER.md's {paper_params:,} (abstract: 60 million)")
        lines.append(f"forward multiply-adds: {macs / 1e6:.1f} M per image (PAPER.md: "
                     f"{paper.FORWARD_MACS_M[str(towers_label)]} M); a training step costs about 3x")
    lines.append(f"neurons: {neurons:,} (abstract: 650,000)")
    per_layer = neurons_per_paper_layer(rows)
    lines.append("neurons per layer: " + "-".join(f"{n:,}" for n in per_layer))
    if str(towers_label) in ("2", "grouped"):
        fig2 = "-".join(f"{n:,}" for n in paper.FIG2_NEURONS)
        lines.append(f"Fig. 2 caption:    {fig2}")
        lines.append(f"  Fig. 2's first entry {paper.FIG2_INCONSISTENT:,} = 96x55x48 is inconsistent: conv1's maps are "
                     f"55x55x96 = {per_layer[0]:,}")
    if exchanged:
        lines.append(f"bytes exchanged between the towers per image, forward: {exchanged:,} "
                     f"(PAPER.md: {paper.CROSS_TOWER_BYTES:,}); crossing devices here: {crossing:,} (marked *)")
    return "\n".join(lines)
