"""ONNX files with bvlc_alexnet's structure and shapes and random weights, as the model zoo writes it at each of
its opsets (Caffe -> Caffe2 -> ONNX: Conv, Relu, LRN, MaxPool with Caffe's ceil-mode pooling as pads, a Reshape
to [1, 9216], Gemm with transB, Dropout, Softmax), for testing the import without the real weights."""
import numpy as np

SHAPES = {"conv1": (96, 3, 11, 11), "conv2": (256, 48, 5, 5), "conv3": (384, 256, 3, 3), "conv4": (384, 192, 3, 3),
          "conv5": (256, 192, 3, 3), "fc6": (4096, 9216), "fc7": (4096, 4096), "fc8": (1000, 4096)}
CONV = {"conv1": (1, 4, 0), "conv2": (2, 1, 2), "conv3": (1, 1, 1), "conv4": (2, 1, 1), "conv5": (2, 1, 1)}


def random_weights(seed=0):
    """Fan-in scaled weights and biases, so every layer's output is far from zero (N(0, 0.01) would give nearly
    constant logits, and a comparison of logits that cannot fail)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for layer, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        weights[layer] = (rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32),
                          rng.normal(0, 0.1, shape[0]).astype(np.float32))
    return weights


def make_model(opset=8, input_size=224, seed=0, weights=None, fc_transposed=True):
    """A bvlcalexnet-structured onnx.ModelProto; pools padded for Caffe's ceil mode at `input_size`; the fc8
    logits ("fc8_1") are a graph output beside the softmax ("prob_1")."""
    from onnx import TensorProto, helper, numpy_helper
    weights = weights or random_weights(seed)
    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def pool_pads(size):
        extra = -(-(size - 3) // 2) * 2 + 3 - size
        return [0, 0, extra, extra], (size + extra - 3) // 2 + 1

    x, size = "data_0", input_size
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        group, stride, pad = CONV[layer]
        w, b = weights[layer]
        nodes.append(helper.make_node("Conv", [x, init(f"{layer}_w_0", w), init(f"{layer}_b_0", b)], [f"{layer}_1"],
                                      kernel_shape=list(w.shape[2:]), strides=[stride, stride], pads=[pad] * 4,
                                      group=group))
        size = (size + 2 * pad - w.shape[-1]) // stride + 1
        nodes.append(helper.make_node("Relu", [f"{layer}_1"], [f"{layer}_2"]))
        x = f"{layer}_2"
        if layer in ("conv1", "conv2"):
            nodes.append(helper.make_node("LRN", [x], [f"norm{layer[-1]}_1"], size=5, alpha=1e-4, beta=0.75, bias=1.0))
            x = f"norm{layer[-1]}_1"
        if layer in ("conv1", "conv2", "conv5"):
            pads, size = pool_pads(size)
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{layer[-1]}_1"], kernel_shape=[3, 3], strides=[2, 2],
                                          pads=pads))
            x = f"pool{layer[-1]}_1"
    if opset < 5:
        nodes.append(helper.make_node("Reshape", [x], ["flat_1"], shape=[1, 9216]))
    else:
        nodes.append(helper.make_node("Reshape", [x, init("flat_shape", np.array([1, 9216], np.int64))], ["flat_1"]))
    x = "flat_1"
    for layer in ("fc6", "fc7", "fc8"):
        w, b = weights[layer]
        gemm = dict(transB=1) if fc_transposed else {}
        if opset < 7:
            gemm["broadcast"] = 1
        nodes.append(helper.make_node("Gemm", [x, init(f"{layer}_w_0", w if fc_transposed else w.T),
                                               init(f"{layer}_b_0", b)], [f"{layer}_1"], **gemm))
        x = f"{layer}_1"
        if layer != "fc8":
            nodes.append(helper.make_node("Relu", [x], [f"{layer}_2"]))
            dropout = dict(is_test=1) if opset < 7 else {}
            nodes.append(helper.make_node("Dropout", [f"{layer}_2"], [f"drop{layer[-1]}_1"], **dropout))
            x = f"drop{layer[-1]}_1"
    nodes.append(helper.make_node("Softmax", [x], ["prob_1"]))
    graph = helper.make_graph(
        nodes, "bvlc_alexnet", [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, input_size, input_size])],
        [helper.make_tensor_value_info("prob_1", TensorProto.FLOAT, [1, 1000]),
         helper.make_tensor_value_info("fc8_1", TensorProto.FLOAT, [1, 1000])], inits)
    if opset < 7:   # IR version 3, as the zoo's oldest files: every initializer is also a graph input
        graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3 if opset < 7 else 7
    return model
