"""A trained net in use: classification of image files, evaluation of imported weights on ILSVRC classes, and a
SavedModel that a fresh process loads and that gives the same probabilities."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from replica.inputs import ilsvrc, photos
from replica.trained import pretrained, serving
from replica.errors import UserError
from tests.conftest import REPO, SHARED_DATA

onnx = pytest.importorskip("onnx")

PHOTOS = sorted(pretrained.PHOTOS.glob("*.JPEG"))


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    from tests.bvlcalexnet_like import make_model
    path = tmp_path_factory.mktemp("weights") / "bvlcalexnet-like.onnx"
    onnx.save(make_model(opset=8), str(path))
    return path


def test_classify_names_the_most_probable_ilsvrc_classes(onnx_file):
    classifier = serving.from_onnx(onnx_file, "grouped")
    assert classifier.input_size == 227 and len(classifier.class_names) == 1000
    (path, best), = serving.classify(classifier, PHOTOS[:1])
    probs = tf.nn.softmax(classifier.model(serving.prepare(classifier, photos.read_image(PHOTOS[0]))[None]))[0]
    expected = np.argsort(-probs.numpy())[:5]
    assert [name for name, _ in best] == [classifier.class_names[k] for k in expected]
    assert [p for _, p in best] == sorted((p for _, p in best), reverse=True)
    assert classifier.class_names[0] == ilsvrc.class_table()[classifier.wnids[0]] and classifier.wnids[0] == "n01440764"


def test_a_folder_of_some_ilsvrc_classes_is_scored_over_all_1000(onnx_file):
    classifier = serving.from_onnx(onnx_file, "grouped")

    class Folder:
        source, classes = "a folder", ["n01641577", "n09246464"]
    assert serving.ilsvrc_label_map(classifier, Folder()).numpy().tolist() == [
        classifier.wnids.index("n01641577"), classifier.wnids.index("n09246464")]
    Folder.classes = ["n01641577", "cat"]
    with pytest.raises(UserError, match="class cat is not one of the net's ILSVRC-2012 classes"):
        serving.ilsvrc_label_map(classifier, Folder())


LOAD_AND_SERVE = """
import sys, json, numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
image = tf.io.decode_jpeg(tf.io.read_file(sys.argv[2]))[None]
out = model.signatures["serving_default"](images=image)
print(json.dumps({"probabilities": out["probabilities"].numpy()[0].tolist(),
                  "names": [n.decode() for n in out["top5_names"].numpy()[0]]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("towers", [2, "grouped"])
def test_an_export_loads_in_a_fresh_process_and_serves_the_same_probabilities(onnx_file, tmp_path, towers,
                                                                              two_devices, monkeypatch):
    classifier = serving.from_onnx(onnx_file, towers, devices=two_devices if towers == 2 else None)
    out = serving.export(classifier, tmp_path / "export")
    photo = PHOTOS[1]
    here = tf.nn.softmax(classifier.model(serving.prepare(classifier, photos.read_image(photo))[None]))[0].numpy()
    result = subprocess.run([sys.executable, "-c", LOAD_AND_SERVE, str(out), str(photo)], capture_output=True,
                            text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served["probabilities"], here, atol=1e-5)
    assert served["names"][0] == classifier.class_names[int(here.argmax())]
    graph = (out / "saved_model.pb").read_bytes()
    assert (b"/device:CPU:1" in graph) == (towers == 2)   # the towers' placement kept, the grouped net portable
    with pytest.raises(UserError, match="is not empty"):
        serving.export(classifier, out)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match=f"could not write the SavedModel to {tmp_path}/a-file/export"):
        serving.export(classifier, tmp_path / "a-file" / "export")

    def disk_full(module, folder, **kwargs):   # the disk fills half-way through the variables
        pathlib.Path(folder, "variables").mkdir(parents=True)
        pathlib.Path(folder, "variables", "variables.data-00000-of-00001").write_bytes(b"\0" * 1000)
        raise tf.errors.ResourceExhaustedError(None, None, f"{folder}/variables; No space left on device")
    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    with pytest.raises(UserError, match=r"SavedModel to .*full-disk \(No space left on device\); free space"):
        serving.export(classifier, tmp_path / "full-disk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "export"]   # nothing half written is left


@pytest.mark.slow
def test_the_command_line_classifies_and_evaluates_with_imported_weights(onnx_file, tmp_path):
    def run(*flags):
        return subprocess.run([sys.executable, "run_experiment.py", f"--weights={onnx_file}", *flags], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
    folder = tmp_path / "folder"   # two ILSVRC classes of tiny-imagenet-10, 3 photos each per split
    for split in ("train", "val"):
        for wnid in ("n01641577", "n09246464"):
            (folder / split / wnid).mkdir(parents=True)
            for f in sorted((SHARED_DATA / "tiny-imagenet-10" / split / wnid).iterdir())[:3]:
                (folder / split / wnid / f.name).write_bytes(f.read_bytes())
    done = run(f"--classify={PHOTOS[0]}", "--eval_only", "--dataset=imagenet_folder", f"--data_dir={folder}",
               "--towers=merged", f"--cache_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert PHOTOS[0].name in done.stdout and done.stdout.count("%") == 5
    assert "6 images of 2 classes, 1000-way" in done.stdout and "0.429" in done.stdout
    for flags, message in ((["--towers=1", f"--classify={PHOTOS[0]}"], "--towers=2, grouped or merged"),
                           ([f"--classify={tmp_path}/missing.jpg"], "not a readable image")):
        failed = run(*flags)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr[-1000:]


@pytest.mark.slow
def test_a_trained_run_classifies_with_its_own_mean_and_class_names(tmp_path, two_devices):
    run_dir = tmp_path / "run"
    trained = subprocess.run([sys.executable, "run_experiment.py", f"--run_dir={run_dir}", "--max_steps=2",
                              "--noten_crop", "--eval_limit=64"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    classifier = serving.from_run(run_dir, two_devices)
    assert classifier.input_size == classifier.stored_size == 32 and classifier.mean.shape == (32, 32, 3)
    assert classifier.class_names[:2] == ["airplane", "automobile"] and classifier.wnids is None
    (_, best), = serving.classify(classifier, PHOTOS[:1], ten_crop=False)
    assert {name for name, _ in best} <= set(classifier.class_names) and len(best) == 5
