"""Importing bvlc_alexnet from ONNX: checked against onnx.reference's evaluator, an implementation that shares no
code with ours, on files of bvlc_alexnet's structure with random weights (the real file cannot be downloaded
here), at each opset layout of the model zoo."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import tensorflow as tf  # noqa: E402

from replica.trained import pretrained  # noqa: E402
from replica.errors import UserError  # noqa: E402
from tests.bvlcalexnet_like import make_model, random_weights  # noqa: E402

PHOTOS = sorted(pretrained.PHOTOS.glob("*.JPEG"))[:2]


def reference_logits(model, images):
    """fc8's output from onnx.reference on RGB crops (replica.trained.pretrained.reference_logits)."""
    return pretrained.reference_logits(model, images, "fc8_1")


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "bvlcalexnet-like-8.onnx"
    model = make_model(opset=8)
    onnx.save(model, str(path))
    return path, model


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_the_towers_compute_what_the_file_computes(zoo_file, two_devices):
    path, model = zoo_file
    imported = pretrained.read(path)
    assert imported.input_size == 224 and imported.pool_padding == "CEIL" and imported.published_as is None
    images = pretrained.photo_crops(PHOTOS, imported.input_size)
    expected = reference_logits(model, images)
    towers = pretrained.build_model(imported, 2, devices=two_devices, input_size=imported.input_size)
    ours = towers(pretrained.preprocess(images)).numpy()
    assert np.abs(expected).max() > 1.0 and np.std(expected) > 0.1   # logits that are not all alike
    assert relative_error(ours, expected) < 1e-4
    assert (ours.argmax(1) == expected.argmax(1)).all()


@pytest.mark.slow
def test_grouped_and_merged_imports_equal_the_towers(zoo_file, two_devices):
    imported = pretrained.read(zoo_file[0])
    images = pretrained.preprocess(pretrained.photo_crops(PHOTOS[:1]))
    towers = pretrained.build_model(imported, 2, devices=two_devices)(images).numpy()
    for form in ("grouped", "merged"):
        assert relative_error(pretrained.build_model(imported, form)(images).numpy(), towers) < 1e-5, form


@pytest.mark.slow
@pytest.mark.parametrize("opset,transposed", [(3, True), (12, False)])   # opset 8 is the fast tier's
def test_every_zoo_opset_layout_imports_to_the_same_function(tmp_path, opset, transposed):
    model = make_model(opset=opset, fc_transposed=transposed)
    path = tmp_path / f"bvlcalexnet-{opset}.onnx"
    onnx.save(model, str(path))
    imported = pretrained.read(path)
    images = pretrained.photo_crops(PHOTOS[:1], imported.input_size)
    ours = pretrained.build_model(imported, "grouped", input_size=imported.input_size)(pretrained.preprocess(images))
    assert relative_error(ours.numpy(), reference_logits(model, images)) < 1e-4


def test_fc6_rows_are_reordered_from_caffes_channel_first_flatten():
    """pool5 flattened (c, h, w) by Caffe and (h, w, c) here: the same weight must meet the same activation."""
    weight = np.arange(2 * 9216, dtype=np.float32).reshape(2, 9216)
    kernel = pretrained.keras_kernel("fc6", weight)
    c, h, w = 200, 4, 1
    assert kernel[(h * 6 + w) * 256 + c, 1] == weight[1, c * 36 + h * 6 + w]


def test_conv1_takes_rgb_where_caffe_took_bgr():
    weight = np.zeros((96, 3, 11, 11), np.float32)
    weight[:, 0] = 1.0   # Caffe's channel 0 is blue
    assert (pretrained.keras_kernel("conv1", weight)[..., 2, :] == 1.0).all()   # ours: blue is channel 2


def test_a_file_of_another_structure_is_a_one_line_error_naming_the_first_mismatch(tmp_path):
    weights = random_weights()
    weights["fc7"] = (weights["fc7"][0][:, :2048], weights["fc7"][1])
    bad = make_model(weights=weights)
    bad.graph.node.remove(next(n for n in bad.graph.node if n.op_type == "LRN"))
    onnx.save(bad, str(tmp_path / "no_lrn.onnx"))
    with pytest.raises(UserError, match=r"layer 2 is MaxPool, expected LRN"):
        pretrained.read(tmp_path / "no_lrn.onnx")
    onnx.save(make_model(weights=weights), str(tmp_path / "narrow.onnx"))
    with pytest.raises(UserError, match=r"fc7's weights are \[4096, 2048\]") as raised:
        pretrained.read(tmp_path / "narrow.onnx")
    assert "\n" not in str(raised.value)
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(UserError, match="not a readable ONNX file"):
        pretrained.read(tmp_path / "garbage.onnx")
    with pytest.raises(UserError, match="missing.onnx: no such file"):
        pretrained.read(tmp_path / "missing.onnx")


def test_a_published_file_is_named_by_its_hash(zoo_file, monkeypatch):
    path = zoo_file[0]
    monkeypatch.setitem(pretrained.PUBLISHED, pretrained.sha256_of(path), ("bvlcalexnet-8.onnx", path.stat().st_size))
    imported = pretrained.read(path)
    assert imported.published_as == "bvlcalexnet-8.onnx"
    assert "the model zoo's bvlcalexnet-8.onnx" in pretrained.describe(imported)


def test_ceil_mode_pooling_reads_past_the_edge_as_caffe_does():
    from replica.net import layers
    x = tf.random.stateless_normal([1, 54, 54, 2], seed=[1, 2])
    pooled = layers.max_pool(x, padding="CEIL").numpy()
    assert pooled.shape == (1, 27, 27, 2)                  # Caffe: ceil((54 - 3) / 2) + 1
    assert pooled[0, 26, 26, 0] == x.numpy()[0, 52:54, 52:54, 0].max()   # the last window holds 2x2 real values
    at_227 = tf.random.stateless_normal([1, 55, 55, 2], seed=[1, 2])
    np.testing.assert_array_equal(layers.max_pool(at_227, padding="CEIL"), layers.max_pool(at_227))


@pytest.mark.slow
def test_verify_reports_the_hash_each_form_against_the_reference_and_the_top5(zoo_file, two_devices):
    lines, worst = pretrained.verify(zoo_file[0], PHOTOS, two_devices)
    assert worst < 1e-4 and lines[-1] == "verdict: the import computes what the file computes"
    assert sum(line.startswith(("two towers:", "grouped:", "merged:")) for line in lines) == 3
    assert sum(line.startswith(tuple(p.name for p in PHOTOS)) for line in lines) == len(PHOTOS)
    assert "not a published file" in lines[1]


@pytest.mark.slow
def test_fig3_on_imported_kernels_writes_its_own_table_and_grid(zoo_file, tmp_path):
    import json
    import subprocess
    import sys
    from tests.conftest import REPO
    result = subprocess.run([sys.executable, "experiments/conv1_kernels.py", f"--weights={zoo_file[0]}",
                             f"--out_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "conv1_kernels_bvlc_alexnet.json").read_text())["rows"]
    assert [r["run"] for r in rows] == ["bvlc_alexnet"] and 0 < rows[0]["tower 0 colour specificity"] < 1
    assert (tmp_path / "conv1_kernels_bvlc_alexnet.png").is_file()
