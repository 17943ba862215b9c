"""The paper's constants, each with the section of ../shared/PAPER.md (and of the paper) it comes from.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks", NIPS 2012.
Everything the library defaults to is read from here, so a reader can check the replica against the paper in
one file.
"""
import dataclasses

# --- PAPER.md 1 (paper 3.2, 3.5, Fig. 2): the two towers -------------------------------------------------------
INPUT_SIZE = 227                 # PAPER.md 4: 224 + 3 implicit zero pixels, or a 227 crop; both give 55x55.
STATED_INPUT_SIZE = 224          # the paper's text (3.5), read with INPUT_SIZE - 224 zero pixels past its edge
CONV1_KERNEL, CONV1_STRIDE = 11, 4
CONV2_KERNEL = 5
CONV345_KERNEL = 3

# Kernels per layer: conv1..conv5, fc6, fc7 (PAPER.md 1 and 2).
TWO_TOWER_WIDTHS = (48, 128, 192, 192, 128, 2048, 2048)     # per tower
ONE_GPU_WIDTHS = (48, 128, 192, 192, 256, 4096, 4096)       # PAPER.md 2, the paper's footnote 2
MERGED_WIDTHS = (96, 256, 384, 384, 256, 4096, 4096)        # PAPER.md 2, the dense single-device net
NUM_CLASSES = 1000


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of the network (PAPER.md 1, paper Fig. 2): what it computes and which maps it reads."""
    name: str
    kind: str            # "conv" or "fc"
    kernel: int = 0      # kernel size of a conv layer (conv1's follows the input geometry)
    sees: str = "own"    # "image", "own" (its own tower's maps only) or "both" (both towers': an exchange point)
    lrn: bool = False    # followed by local response normalisation (paper 3.3)
    pool: bool = False   # followed by max pooling (paper 3.4)


# The network, top to bottom: the one place that says which layer sees which tower. The model, the collapse to one
# device, the per-layer table and the cost model all read it; moving an exchange point is one edit here.
TOPOLOGY = (
    Layer("conv1", "conv", CONV1_KERNEL, sees="image", lrn=True, pool=True),
    Layer("conv2", "conv", CONV2_KERNEL, sees="own", lrn=True, pool=True),
    Layer("conv3", "conv", CONV345_KERNEL, sees="both"),
    Layer("conv4", "conv", CONV345_KERNEL, sees="own"),
    Layer("conv5", "conv", CONV345_KERNEL, sees="own", pool=True),
    Layer("fc6", "fc", sees="both"),
    Layer("fc7", "fc", sees="both"),
    Layer("fc8", "fc", sees="both"),   # one layer, on tower 0's device (cuda-convnet2)
)
LAYER_NAMES = tuple(layer.name for layer in TOPOLOGY)
LAYERS = {layer.name: layer for layer in TOPOLOGY}
EXCHANGE_LAYERS = tuple(layer.name for layer in TOPOLOGY if layer.sees == "both")   # conv3, fc6, fc7, fc8
OWN_TOWER_LAYERS = tuple(layer.name for layer in TOPOLOGY if layer.sees == "own")   # conv2, conv4, conv5

# --- PAPER.md 1: initialisation -------------------------------------------------------------------------------
WEIGHT_INIT_STDDEV = 0.01
BIAS_ONE_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")  # all other biases start at 0
POSITIVE_BIAS = 1.0              # the bias of those layers (Caffe: 0.1)

# --- PAPER.md 3 (paper 3.3): local response normalisation -----------------------------------------------------
LRN_DEPTH_RADIUS = 2             # n = 5 adjacent maps
LRN_N = 2 * LRN_DEPTH_RADIUS + 1
LRN_K = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.75

# --- PAPER.md 3 (paper 3.4): overlapping pooling ---------------------------------------------------------------
POOL_OVERLAPPING = (3, 2)        # window, stride
POOL_NON_OVERLAPPING = (2, 2)

# --- PAPER.md 3 (paper 4.2): dropout ---------------------------------------------------------------------------
DROPOUT_RATE = 0.5

# --- PAPER.md 3 (paper 5): the SGD recipe ----------------------------------------------------------------------
BATCH_SIZE = 128
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0005
LEARNING_RATE = 0.01
LR_DROP_FACTOR = 10.0
LR_DROPS = 3
EPOCHS = 90

# --- PAPER.md 3 (paper 2, 4.1): data ---------------------------------------------------------------------------
RESIZE_SHORTER_SIDE = 256
PCA_ALPHA_STDDEV = 0.1

# --- PAPER.md 1: reference figures the per-layer table is checked against --------------------------------------
PARAMS = {"2": 60_965_224, "1": 59_798_312, "merged": 62_378_344}
FORWARD_MACS_M = {"2": 724.4, "1": 391.5, "merged": 1135.3}
FIG2_NEURONS = (253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000)
FIG2_INCONSISTENT = 253_440      # 96 x 55 x 48; the maps give 55 x 55 x 96 = 290,400
CROSS_TOWER_BYTES = 234_496      # forward, per image, float32

# Hardware of the paper (paper 5) for the timing cost model.
GTX580_TFLOPS = 1.58
PCIE2_X16_GBPS = 8.0             # GB/s per direction
