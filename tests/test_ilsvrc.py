"""ILSVRC-2012's layouts in miniature, built from the real tiny-imagenet-10 photos: the same validation images get
the same labels through a class-folder val/ and a flat val/ with each of the label files."""
import pathlib
import shutil

import numpy as np
import pytest

from replica.inputs import ilsvrc, image_folder
from tests.conftest import SHARED_DATA

TINY = SHARED_DATA / "tiny-imagenet-10"
pytestmark = pytest.mark.skipif(not TINY.is_dir(), reason="../shared/data is not beside the repo")


@pytest.fixture(scope="module")
def class_folder_tree(tmp_path_factory):
    """train/<wnid>/ and val/<wnid>/ with 2 photos a class for 4 classes."""
    root = tmp_path_factory.mktemp("classes")
    for split in ("train", "val"):
        for wnid in sorted(p.name for p in (TINY / "train").iterdir())[:4]:
            (root / split / wnid).mkdir(parents=True)
            for f in sorted((TINY / split / wnid).iterdir())[:2]:
                shutil.copy(f, root / split / wnid / f.name)
    return root


def flatten(class_tree, target):
    """The same images with val/ flat, named as the validation tar names them, in a shuffled order; returns
    {flat file name: wnid}."""
    shutil.copytree(class_tree / "train", target / "train")
    (target / "val").mkdir()
    files = sorted((class_tree / "val").glob("*/*"))
    order = np.random.default_rng(0).permutation(len(files))
    truth = {}
    for k, i in enumerate(order):
        name = f"ILSVRC2012_val_{k + 1:08d}.JPEG"
        shutil.copy(files[i], target / "val" / name)
        truth[name] = files[i].parent.name
    return truth


def labels_by_pixels(data):
    """{bytes of the decoded validation image: label}, to compare layouts image by image."""
    out = {}
    for images, labels in data.eval_batches(16):
        for x, y in zip(images.numpy(), labels.numpy()):
            out[x.tobytes()] = int(y)
    return out


def write_devkit(root, truth, classes):
    from scipy.io import savemat
    ids = np.roll(np.arange(len(classes)), 1) + 1     # devkit ids are not the sorted order: [4, 1, 2, 3]
    wnid_of = {int(i): c for i, c in zip(ids, classes)}
    synsets = np.array([(i, w) for i, w in wnid_of.items()], dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    savemat(devkit / "meta.mat", {"synsets": synsets})
    id_of = {w: i for i, w in wnid_of.items()}
    (devkit / ilsvrc.DEVKIT_GROUND_TRUTH).write_text("".join(f"{id_of[truth[n]]}\n" for n in sorted(truth)))


def write_kaggle(root, truth, classes):
    rows = ["ImageId,PredictionString"] + [f"{pathlib.Path(n).stem},{w} 1 2 30 40" for n, w in truth.items()]
    (root / ilsvrc.KAGGLE_SOLUTION).write_text("\n".join(rows) + "\n")


def write_caffe(root, truth, classes):
    (root / "val" / ilsvrc.CAFFE_VAL).write_text("".join(f"{n} {classes.index(w)}\n" for n, w in truth.items()))


@pytest.mark.parametrize("write_labels", [write_devkit, write_kaggle, write_caffe])
def test_a_flat_val_folder_gets_the_labels_of_the_class_folder_layout(class_folder_tree, tmp_path, write_labels):
    reference = image_folder.ImageFolder(class_folder_tree, cache_dir=tmp_path / "cache0")
    truth = flatten(class_folder_tree, tmp_path / "flat")
    write_labels(tmp_path / "flat", truth, reference.classes)
    flat = image_folder.ImageFolder(tmp_path / "flat", cache_dir=tmp_path / "cache1")
    assert flat.classes == reference.classes and flat.eval_size() == reference.eval_size() == 8
    assert labels_by_pixels(flat) == labels_by_pixels(reference)


def test_a_flat_val_folder_without_labels_lists_what_it_found_and_the_layouts(class_folder_tree, tmp_path):
    flatten(class_folder_tree, tmp_path / "flat")
    with pytest.raises(ilsvrc.LayoutError, match="no class folders and no label file; found ILSVRC2012_val_0000"
                                                 ".*the layouts read: val/<wnid>"):
        image_folder.ImageFolder(tmp_path / "flat", cache_dir=tmp_path / "cache")


def test_a_label_naming_a_class_train_does_not_have_is_named(class_folder_tree, tmp_path):
    truth = flatten(class_folder_tree, tmp_path / "flat")
    first = sorted(truth)[0]
    truth[first] = "n99999999"
    write_kaggle(tmp_path / "flat", truth, None)
    with pytest.raises(ilsvrc.LayoutError, match=f"{first} is labelled n99999999, which train/ has no folder for"):
        image_folder.ImageFolder(tmp_path / "flat", cache_dir=tmp_path / "cache")


def test_the_shipped_class_table_is_the_sorted_thousand_with_the_devkit_words(class_folder_tree, tmp_path):
    table = ilsvrc.class_table()
    assert len(table) == 1000 and list(table) == sorted(table)
    words = dict(line.split("\t") for line in (TINY / "words.txt").read_text().splitlines())
    assert all(table[wnid] == w for wnid, w in words.items())   # an independent source agrees
    data = image_folder.ImageFolder(class_folder_tree, cache_dir=tmp_path / "cache")
    assert data.class_names == [words[c] for c in data.classes]
    assert ilsvrc.class_names(["n00000000"]) == ["n00000000"]
