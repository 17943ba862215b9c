"""The AlexNet that was trained on ImageNet: Caffe's bvlc_alexnet, read from the ONNX model zoo's `bvlcalexnet`
file into the two towers (or the grouped or merged net).

bvlc_alexnet is the paper's net written as grouped convolutions (`group: 2` in conv2, conv4 and conv5; conv1,
conv3, fc6 and fc7 see both halves), trained by Caffe on ILSVRC-2012 (57.1% / 80.2% top-1 / top-5 accuracy on
its validation set, centre crop). It differs from the paper in its LRN, Caffe's (k 1, alpha / 5), which normalises
across all 96 / 256 maps and so across the two towers: the imported nets use `lrn="caffe"` (an exchange after
conv1 and conv2 in the two towers). Its input is BGR, 0-255, minus the per-channel mean of Caffe's ILSVRC-2012
mean image (`MEAN_BGR`, as Caffe's own classify.py subtracts it); the imported conv1 takes RGB (its kernels'
input channels reversed), so `preprocess` only subtracts the mean.

The zoo's README gives a 224x224 input, where conv1 (11x11, stride 4, no padding) sees 54x54 positions and fc6's
9,216 inputs are reached only with Caffe's ceil-mode pooling (27, 13, 6 maps), written as pads or as `ceil_mode`;
the reader checks the pools against the declared size. The weights were trained (and their published accuracy
measured) at 227. `read` records the file's own input size, and `build_model(imported, input_size=...)` builds
either: the file's (to check the import against the file) or 227 (the default, for evaluation and
classification). The network is recognised by its operators and weight shapes, never by node names; a file of
another structure is an error naming the first mismatch.

  python -m replica.trained.pretrained --verify bvlcalexnet-8.onnx [--photos=DIR]
"""
import dataclasses
import hashlib
import pathlib

import numpy as np

from replica.net import collapse
from replica import paper
from replica.net import model as model_lib
from replica.errors import UserError, run_main

# The files published in the ONNX model zoo whose hashes are known here: sha256 -> (name, bytes).
PUBLISHED = {
    "9a4dc22fd706a19462aaec3b08e027e0ef89daf63d123824f20b59b6de9a727b": ("bvlcalexnet-8.onnx", 243_863_542),
}
SOURCE = "https://github.com/onnx/models (validated/vision/classification/alexnet), BSD licence"
PUBLISHED_ACCURACY = {"top1": 0.571, "top5": 0.802}   # ILSVRC-2012 val, centre crop (the zoo's README)
MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)   # Caffe's ilsvrc_2012_mean.npy averaged over its pixels
CAFFE_INPUT_SIZE = 227                                   # bvlc_alexnet's deploy.prototxt

# (layer, ONNX operator, weight shape [out, in, kh, kw] or [out, in], group, strides, conv pads)
EXPECTED = (
    ("conv1", "Conv", (96, 3, 11, 11), 1, (4, 4), (0, 0, 0, 0)),
    ("conv2", "Conv", (256, 48, 5, 5), 2, (1, 1), (2, 2, 2, 2)),
    ("conv3", "Conv", (384, 256, 3, 3), 1, (1, 1), (1, 1, 1, 1)),
    ("conv4", "Conv", (384, 192, 3, 3), 2, (1, 1), (1, 1, 1, 1)),
    ("conv5", "Conv", (256, 192, 3, 3), 2, (1, 1), (1, 1, 1, 1)),
    ("fc6", "Gemm", (4096, 9216)),
    ("fc7", "Gemm", (4096, 4096)),
    ("fc8", "Gemm", (1000, 4096)),
)
LAYER_OPS = ("Conv", "LRN", "MaxPool", "Gemm")
ORDER = ("Conv", "LRN", "MaxPool", "Conv", "LRN", "MaxPool", "Conv", "Conv", "Conv", "MaxPool", "Gemm", "Gemm",
         "Gemm")   # conv1, norm1, pool1, ... as in bvlc_alexnet's prototxt (norm before pool)


class ImportError_(UserError):
    """The file cannot be read as bvlc_alexnet."""


@dataclasses.dataclass
class Imported:
    """bvlc_alexnet's weights in Caffe's layout ({layer: (weight [out, in, ...], bias)}) and what the file says
    about its input."""
    weights: dict
    input_size: int          # the file's declared input (224 in the zoo's files)
    pool_padding: str        # "CEIL" (Caffe's pooling) or "VALID"
    sha256: str
    published_as: str = None   # the zoo's file name when the hash is one of PUBLISHED

    @property
    def num_classes(self):
        return self.weights["fc8"][0].shape[0]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_onnx(path):
    """The ONNX model in `path`; a one-line error when onnx is missing or the file unreadable."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise ImportError_("reading ONNX weights needs the onnx package: pip install onnx "
                           "(or pip install -e '.[onnx]')") from None
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: {'a folder, not a file' if path.is_dir() else 'no such file'}; download "
                           f"bvlcalexnet-8.onnx from {SOURCE}")
    try:
        return onnx.load(str(path))
    except Exception as e:   # onnx raises DecodeError and others for a damaged file
        raise ImportError_(f"{path} is not a readable ONNX file ({type(e).__name__}); download it again") from None


def attributes(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def constant_arrays(graph):
    """Initializers and Constant nodes' values by name."""
    from onnx import numpy_helper
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            arrays[node.output[0]] = numpy_helper.to_array(attributes(node)["value"])
    return arrays


def declared_input_size(graph, arrays):
    """The spatial size of the graph's image input (the input that is not a weight), or Caffe's 227 if unstated."""
    for value in graph.input:
        if value.name in arrays:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[2] == dims[3] and dims[2] > 0:
            return dims[2]
    return CAFFE_INPUT_SIZE


def conv_output(size, kernel, stride, pad_before, pad_after):
    return (size + pad_before + pad_after - kernel) // stride + 1


def read(path, model=None):
    """bvlc_alexnet's weights from an ONNX file of any opset of the model zoo (Imported); a file of another
    structure is an ImportError_ naming the first mismatch. model: the file already loaded (`load_onnx`)."""
    model = model or load_onnx(path)
    graph = model.graph
    arrays = constant_arrays(graph)
    nodes = [n for n in graph.node if n.op_type in LAYER_OPS]
    ops = tuple(n.op_type for n in nodes)
    if ops != ORDER:
        first = next((i for i, (a, b) in enumerate(zip(ops, ORDER)) if a != b), min(len(ops), len(ORDER)))
        found = ops[first] if first < len(ops) else "the end of the graph"
        wanted = ORDER[first] if first < len(ORDER) else "nothing more"
        raise ImportError_(f"{path} is not bvlc_alexnet: its layer {first + 1} is {found}, expected {wanted}")
    size = declared_input_size(graph, arrays)
    weights, pools, maps = {}, [], size
    layers = iter(EXPECTED)
    for node in nodes:
        attrs = attributes(node)
        if node.op_type == "LRN":
            check_lrn(path, attrs)
            continue
        if node.op_type == "MaxPool":
            pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
            if attrs.get("ceil_mode"):   # opset 10 and later may say ceil mode instead of padding for it
                from replica.net.layers import ceil_pad
                pads = (pads[0], pads[1], pads[2] + ceil_pad(maps + pads[0] + pads[2], 3, 2),
                        pads[3] + ceil_pad(maps + pads[1] + pads[3], 3, 2))
            if tuple(attrs.get("kernel_shape", ())) != (3, 3) or tuple(attrs.get("strides", ())) != (2, 2):
                raise ImportError_(f"{path}: pool{len(pools) + 1} is not 3x3 stride 2 (paper 3.4)")
            pools.append(pads)
            maps = conv_output(maps, 3, 2, pads[0], pads[2])
            continue
        name, op, shape, *conv = next(layers)
        weight, bias = layer_weights(path, name, node, attrs, arrays)
        if weight.shape != shape or bias.shape != (shape[0],):
            raise ImportError_(f"{path}: {name}'s weights are {list(weight.shape)} + bias {list(bias.shape)}, "
                               f"bvlc_alexnet's {list(shape)} + [{shape[0]}]")
        if conv:
            group, strides, pads = conv
            found = (attrs.get("group", 1), tuple(attrs.get("strides", (1, 1))), tuple(attrs.get("pads", (0,) * 4)))
            if found != (group, strides, pads):
                raise ImportError_(f"{path}: {name} has group {found[0]}, strides {found[1]}, pads {found[2]}; "
                                   f"bvlc_alexnet's are {group}, {strides}, {pads}")
            maps = conv_output(maps, shape[-1], strides[0], pads[0], pads[2])
        weights[name] = (weight, bias)
    if maps != 6:
        raise ImportError_(f"{path}: at its {size}x{size} input pool5 gives {maps}x{maps} maps; fc6 needs 6x6")
    digest = sha256_of(path)
    return Imported(weights, size, pool_padding(path, pools, size), digest, PUBLISHED.get(digest, (None,))[0])


def check_lrn(path, attrs):
    found = (attrs.get("size"), attrs.get("alpha"), attrs.get("beta"), attrs.get("bias", 1.0))
    if found[0] != paper.LRN_N or not np.allclose(found[1:], (paper.LRN_ALPHA, paper.LRN_BETA, 1.0)):
        raise ImportError_(f"{path}: an LRN with size, alpha, beta, bias {found}; Caffe's is (5, 1e-4, 0.75, 1)")


def layer_weights(path, name, node, attrs, arrays):
    """(weight [out, in, ...], bias) of a Conv or Gemm node, Gemm's transB undone."""
    try:
        weight, bias = arrays[node.input[1]], arrays[node.input[2]]
    except (IndexError, KeyError):
        raise ImportError_(f"{path}: {name}'s weights are not stored in the file") from None
    if node.op_type == "Gemm" and not attrs.get("transB", 0):
        weight = weight.T
    return weight.astype(np.float32), bias.astype(np.float32)


def pool_padding(path, pools, size):
    """"CEIL" when the pools' pads are Caffe's ceil mode at the file's input size, "VALID" when there are none."""
    from replica.net.layers import ceil_pad
    if all(p == (0, 0, 0, 0) for p in pools):
        return "VALID"
    maps = [conv_output(size, 11, 4, 0, 0)]   # conv1's maps, then each pool's
    for pads in pools:
        maps.append(conv_output(maps[-1], 3, 2, pads[0], pads[2]))
    # conv2-conv5 keep the size ('same' padding), so pool k reads the maps pool k-1 wrote (pool5 reads pool2's)
    inputs = [maps[0], maps[1], maps[2]]
    ceil = [(0, 0, ceil_pad(m, 3, 2), ceil_pad(m, 3, 2)) for m in inputs]
    if [tuple(p) for p in pools] != ceil:
        raise ImportError_(f"{path}: pool pads {pools} are neither none nor Caffe's ceil mode {ceil} at "
                           f"{size}x{size}")
    return "CEIL"


# --- into the replica's nets ----------------------------------------------------------------------------------
def keras_kernel(layer, weight):
    """Caffe's [out, in, kh, kw] -> [kh, kw, in, out] (conv1's input channels BGR -> RGB); fc6's [out, 9216] with
    the 9216 inputs in Caffe's channel-first flatten of pool5 (c, h, w) -> [9216, out] in the NHWC flatten
    (h, w, c); other fc layers [out, in] -> [in, out]."""
    if weight.ndim == 4:
        kernel = weight.transpose(2, 3, 1, 0)
        return kernel[:, :, ::-1, :].copy() if layer == "conv1" else kernel
    if layer == "fc6":
        out = weight.shape[0]
        return weight.reshape(out, 256, 6, 6).transpose(2, 3, 1, 0).reshape(9216, out)
    return weight.T.copy()


def tower_weights(imported):
    """{layer name of the two-tower net: [kernel, bias]}: tower t takes its half of every layer's outputs (conv1's
    first 48 kernels to tower 0), and of a grouped layer its own group."""
    weights = {"fc8": [keras_kernel("fc8", imported.weights["fc8"][0]), imported.weights["fc8"][1]]}
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        kernel, bias = keras_kernel(layer, imported.weights[layer][0]), imported.weights[layer][1]
        half = kernel.shape[-1] // 2
        for t in (0, 1):
            weights[f"{layer}_{t}"] = [kernel[..., t * half:(t + 1) * half], bias[t * half:(t + 1) * half]]
    return weights


def single_device_weights(imported, grouped):
    """{layer: [kernel, bias]} of the grouped net (Keras groups=2 kernels, as the file stores them) or the merged
    net (block-diagonal where grouped)."""
    weights = {}
    for layer, (weight, bias) in imported.weights.items():
        kernel = keras_kernel(layer, weight)
        if layer in paper.OWN_TOWER_LAYERS and not grouped:
            half = kernel.shape[-1] // 2
            kernel = collapse.block_diagonal(kernel[..., :half], kernel[..., half:])
        weights[layer] = [kernel, bias]
    return weights


def build_model(imported, towers=2, devices=None, input_size=CAFFE_INPUT_SIZE, precision="float32"):
    """One of the replica's nets (towers 2, "grouped" or "merged") holding bvlc_alexnet's weights, with Caffe's LRN
    and pooling. input_size: 227 (what the weights were trained at) or the file's own (`imported.input_size`)."""
    if towers not in (2, "2", "grouped", "merged"):
        raise UserError(f"--towers={towers}: bvlc_alexnet has the two towers' widths; use 2, grouped or merged")
    # Caffe's ceil-mode pooling, which at 227 is the paper's (every window fits)
    geometry = model_lib.Geometry(input_size, paper.CONV1_KERNEL, paper.CONV1_STRIDE, "valid", "CEIL")
    net = model_lib.AlexNet(model_lib.design_for(towers), geometry, devices=devices, lrn="caffe",
                            num_classes=imported.num_classes, precision=precision,
                            name=f"bvlc_alexnet_{towers}")
    net.build((None, input_size, input_size, 3))
    weights = tower_weights(imported) if towers in (2, "2") else single_device_weights(imported, towers == "grouped")
    for layer, values in weights.items():
        net.get_layer(layer).set_weights(values)
    return net


def preprocess(images):
    """RGB images, 0-255 (uint8 or float) -> what the imported net takes: float32 minus Caffe's mean (RGB)."""
    import tensorflow as tf
    return tf.cast(images, tf.float32) - tf.constant(MEAN_BGR[::-1], tf.float32)


# --- the check against ONNX's reference evaluator ------------------------------------------------------------
def reference_ops(model):
    """Operators handed to onnx.reference for a bvlcalexnet file: ONNX's LRN as its specification defines it (the
    evaluator's own sums over the batch axis instead of the channels, onnx/onnx#7805, fixed after onnx 1.23, which
    with one image normalises channel 0 alone), and for the opset-3 files Reshape-1 and Dropout-1, which it lacks
    (the graph is then read as opset 6, where Gemm is unchanged)."""
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            squares = np.zeros_like(x)
            for c in range(x.shape[1]):
                squares[:, c] = np.sum(x[:, max(0, c - (size - 1) // 2):c + size // 2 + 1] ** 2, axis=1)
            return ((x / (bias + alpha / size * squares) ** beta).astype(x.dtype),)

    class Reshape(OpRun):
        op_domain = ""

        def _run(self, data, shape=None, allowzero=None):
            return (data.reshape(shape),)

    class Dropout(OpRun):
        op_domain = ""

        def _run(self, x, is_test=None, ratio=None, seed=None):
            return (x,)
    return [LRN] + ([Reshape, Dropout] if model.opset_import[0].version < 5 else [])


def fc8_output(model):
    """The name of the last Gemm's output: fc8's logits, before the softmax."""
    return [n for n in model.graph.node if n.op_type == "Gemm"][-1].output[0]


def reference_logits(model, images, output=None):
    """fc8's logits from onnx.reference for RGB crops (uint8, [n, S, S, 3]): BGR, channel-first, minus Caffe's
    mean, as the file expects."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    output = output or fc8_output(model)
    ops = reference_ops(model)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    if model.opset_import[0].version < 5:
        model.opset_import[0].version = 6
    if output not in {o.name for o in model.graph.output}:
        model.graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    evaluator = ReferenceEvaluator(model, new_ops=ops)
    bgr = (images.astype(np.float32) - np.array(MEAN_BGR[::-1], np.float32))[..., ::-1]
    return np.concatenate([evaluator.run([output], {evaluator.input_names[0]: np.ascontiguousarray(
        x.transpose(2, 0, 1)[None])})[0] for x in bgr])


def verify(path, photos, devices):
    """What a machine with the real file checks: its hash, our three forms against the reference evaluator on
    `photos` at the file's input size, and each photo's top-5 classes. Returns the report's lines."""
    from replica.inputs import ilsvrc
    model = load_onnx(path)   # parsed once for both the import and the reference
    imported = read(path, model)
    lines = [describe(imported)]
    if imported.published_as:
        lines.append(f"hash: the published {imported.published_as} ({PUBLISHED[imported.sha256][1]:,} bytes)")
    else:
        lines.append("hash: not a published file known here; the checks below still compare it with itself")
    images = photo_crops(photos, imported.input_size)
    expected = reference_logits(model, images)
    nets = {"two towers": build_model(imported, 2, devices=devices, input_size=imported.input_size),
            "grouped": build_model(imported, "grouped", input_size=imported.input_size),
            "merged": build_model(imported, "merged", input_size=imported.input_size)}
    worst = 0.0
    for name, net in nets.items():
        ours = net(preprocess(images)).numpy()
        error = float(np.abs(ours - expected).max() / np.abs(expected).max())
        worst = max(worst, error)
        lines.append(f"{name}: fc8 logits within {error:.2e} (relative) of onnx.reference, same top-1 "
                     f"{int((ours.argmax(1) == expected.argmax(1)).sum())}/{len(photos)}")
    wnids = list(ilsvrc.class_table())
    probs = softmax(expected)
    for photo, p in zip(photos, probs):
        best = np.argsort(-p)[:5]
        lines.append(f"{pathlib.Path(photo).name}: " + "; ".join(
            f"{ilsvrc.class_names([wnids[k]])[0].split(',')[0]} {p[k]:.1%}" for k in best))
    lines.append("verdict: " + ("the import computes what the file computes" if worst < 1e-4 else
                                "MISMATCH: the import differs from the file; report it with this output"))
    return lines, worst


def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


PHOTOS = pathlib.Path(__file__).resolve().parents[1] / "data" / "photos"


def photo_crops(paths, size=CAFFE_INPUT_SIZE, ten_crop=False):
    """Image files -> uint8 RGB crops with the paper's test preprocessing (PAPER.md 3): shorter side 256, the
    central 256x256, then its centre size x size crop ([n, size, size, 3]) or its 10 crops ([n, 10, ...])."""
    import tensorflow as tf
    from replica.inputs import photos, transforms
    crops = []
    for path in paths:
        image = transforms.resize_and_centre_crop(photos.read_image(path))
        crops.append(transforms.ten_crops(image, size) if ten_crop else transforms.centre_crop(image, size))
    return tf.stack(crops).numpy()


def main(argv):
    from absl import flags
    from replica.net import devices as devices_lib
    FLAGS = flags.FLAGS
    if not FLAGS.verify:
        raise UserError("name the file to check: python -m replica.trained.pretrained --verify=bvlcalexnet-8.onnx")
    photos = sorted(p for p in pathlib.Path(FLAGS.photos).iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if not photos:
        raise UserError(f"--photos={FLAGS.photos} holds no JPEG or PNG photos")
    lines, worst = verify(FLAGS.verify, photos, devices_lib.split_cpu(2))
    print("\n".join(lines))
    return 0 if worst < 1e-4 else 1


def describe(imported):
    """One line: which file this is and what it computes."""
    known = (f"the model zoo's {imported.published_as}" if imported.published_as else
             "not one of the published files whose hash is known here")
    return (f"bvlc_alexnet ({known}; sha256 {imported.sha256[:16]}...): declared input {imported.input_size}x"
            f"{imported.input_size}, {imported.pool_padding.lower()} pooling, {imported.num_classes} classes")


if __name__ == "__main__":
    from absl import flags
    flags.DEFINE_string("verify", None, "An ONNX file of bvlc_alexnet (the model zoo's bvlcalexnet-*.onnx).")
    flags.DEFINE_string("photos", str(PHOTOS), "A folder of photos to compare on (default: the three shipped).")
    run_main(main)
