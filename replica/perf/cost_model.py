"""The per-device cost of a training step: work on each device's critical path and bytes crossing between them.

Explains the paper's claim (paper 3.2) that the two-tower net on two GPUs trains "slightly" faster than the
one-GPU net: each GPU does about half of the towers' work, but pays for the exchanges.
"""
from replica import paper

TRAINING_FLOP_PER_MAC = 3 * 2   # forward + two backward products, 2 FLOP per multiply-add

# (name, float32 TFLOP/s per device, link GB/s per direction)
HARDWARE = (
    ("2x GTX 580 (paper), PCIe 2.0 x16", paper.GTX580_TFLOPS, paper.PCIE2_X16_GBPS),
    ("2x A100 (modern), NVLink 3", 19.5, 300.0),
    ("2x A100 (modern), PCIe 4.0 x16", 19.5, 32.0),
)


def per_device_work(rows):
    """{device: forward multiply-adds per image} from the per-layer table (`summary.layer_table`)."""
    work = {}
    for r in rows:
        work[r.device] = work.get(r.device, 0) + r.macs
    return work


def step_time_per_image(rows, tflops, link_gbps):
    """Seconds per image of a training step: the busiest device's compute plus the exchanges (forward bytes
    and the same bytes of gradients back), when nothing overlaps."""
    busiest = max(per_device_work(rows).values()) * TRAINING_FLOP_PER_MAC
    crossing = 2 * sum(r.bytes_in for r in rows if r.crosses_device)
    return busiest / (tflops * 1e12) + crossing / (link_gbps * 1e9), busiest, crossing
