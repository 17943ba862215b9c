"""How much device memory a training step needs, to tell before training whether a batch fits a GPU.

Per device: the float32 weights, their velocities and their gradients (plus a copy of the weights in the compute
type under mixed precision), and per image the maps each layer keeps for the backward pass: every conv or fc
layer's output about ACTIVATION_COPIES times over (the layer's output, its ReLU, LRN and pooling results, and
their gradients at their peak), and the input image. It is an estimate for choosing a batch, not a promise:
the allocator's fragmentation and cuDNN's workspaces come on top (the headroom of replica.net.devices).
"""
from replica.net import devices as devices_lib
from replica.net import precision as precision_lib
from replica.net import summary
from replica.errors import UserError

ACTIVATION_COPIES = 4
MB = 2 ** 20


class BatchTooLarge(UserError):
    """The step of the requested batch would not fit a device's memory."""


def per_device_mb(model):
    """{device: (fixed MB, MB per image)} of a training step of `model`."""
    compute_bytes = precision_lib.compute_dtype(getattr(model, "precision", "float32")).size
    mixed = compute_bytes < 4
    size = model.geometry.input_size
    out = {}
    for row in summary.layer_table(model):
        fixed, per_image = out.get(row.device, (0.0, size * size * 3 * 4 / MB))
        fixed += row.params * (3 * 4 + (compute_bytes if mixed else 0)) / MB
        per_image += row.neurons * ACTIVATION_COPIES * compute_bytes / MB
        out[row.device] = (fixed, per_image)
    return out


def check_batch_fits(model, batch_size, memory_mb=devices_lib.device_memory_mb):
    """Raise BatchTooLarge naming the batch that fits when a GPU tower device has too little memory for
    `batch_size`; a device whose memory is unknown (a CPU) is not checked."""
    names = {model.tower_device(t) or "" for t in model.towers}
    if all(memory_mb(name) is None for name in names):
        return
    for device, (fixed, per_image) in sorted(per_device_mb(model).items()):
        available = memory_mb(f"/device:{device}")
        if available is None:
            continue
        needed = fixed + batch_size * per_image
        if needed > available:
            fits = max(0, int((available - fixed) // per_image))
            advice = f"--batch_size={fits} fits" if fits else "not even one image fits: use a larger GPU"
            raise BatchTooLarge(f"a step of batch {batch_size} needs about {needed:,.0f} MB on {device}, which has "
                                f"{available:,.0f} MB; {advice} (estimated by replica.net.memory)")
