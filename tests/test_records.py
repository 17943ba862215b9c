"""ImageNet as TFRecord shards: prepared once by replica.inputs.prepare, or as tensorflow/models and TFDS write them;
the same images get the same labels through every layout, training reads them deterministically, and an interrupted
preparation continues shard by shard. Built in miniature from the real tiny-imagenet-10 photos."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from replica.inputs import image_folder, image_shards, prepare
from replica.inputs import input_pipeline as ip
from replica.errors import UserError
from tests.conftest import REPO, SHARED_DATA

TINY = SHARED_DATA / "tiny-imagenet-10"
pytestmark = pytest.mark.skipif(not TINY.is_dir(), reason="../shared/data is not beside the repo")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/<wnid>/ (5 photos a class) and val/<wnid>/ (2) for 4 classes."""
    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 5), ("val", 2)):
        for wnid in sorted(p.name for p in (TINY / "train").iterdir())[:4]:
            (root / split / wnid).mkdir(parents=True)
            for f in sorted((TINY / split / wnid).iterdir())[:count]:
                shutil.copy(f, root / split / wnid / f.name)
    return root


@pytest.fixture(scope="module")
def prepared(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return out, prepare.prepare(folder, out, images_per_shard=8)


def eval_labels_and_files(data):
    return [int(y) for _, labels in data.eval_batches(4) for y in labels.numpy()]


def write_foreign_shards(folder, out, layout):
    """The folder's images as tensorflow/models' official shards or TFDS's, full-size JPEGs as those writers keep
    them, their labels in that layout's convention."""
    classes, train, val = image_folder.list_image_folder(folder)
    for split, files, pattern in (("train", train, "{}-{:05d}-of-00002"), ("validation", val, "{}-{:05d}-of-00001")):
        count = 2 if split == "train" else 1
        prefix = split if layout == "official" else f"imagenet2012-{split}.tfrecord"
        for k in range(count):
            with tf.io.TFRecordWriter(str(out / pattern.format(prefix, k))) as writer:
                for path, label in files[k::count]:
                    encoded = open(path, "rb").read()
                    if layout == "official":
                        feature = {"image/encoded": encoded, "image/class/label": label + 1}
                    else:
                        feature = {"image": encoded, "label": label}
                    writer.write(tf.train.Example(features=tf.train.Features(feature={
                        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v])) if isinstance(v, bytes) else
                        tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for key, v in feature.items()
                    })).SerializeToString())
    return classes


def test_prepared_shards_hold_every_image_once_with_its_label_and_the_training_statistics(folder, prepared):
    out, manifest = prepared
    assert manifest["counts"] == {"train": 20, "eval": 8} and not manifest["skipped"]
    assert sorted(manifest["shards"]) == ["train-00000-of-00003", "train-00001-of-00003", "train-00002-of-00003",
                                          "validation-00000-of-00001"]
    classes, train, _ = image_folder.list_image_folder(folder)
    from replica.inputs import ilsvrc
    assert manifest["class_names"] == ilsvrc.class_names(classes) and "bullfrog" in manifest["class_names"][0]
    truth = {p.split("/")[-1]: y for p, y in train}
    seen = {}
    for name in manifest["shards"]:
        if not name.startswith("train"):
            continue
        for raw in tf.data.TFRecordDataset(str(out / name)):
            ex = tf.train.Example.FromString(raw.numpy()).features.feature
            seen[ex["image/filename"].bytes_list.value[0].decode()] = ex["image/class/label"].int64_list.value[0] - 1
            image = tf.io.decode_jpeg(ex["image/encoded"].bytes_list.value[0])
            assert image.shape == (256, 256, 3)
    assert seen == truth
    for f in folder.glob("*/*/*"):   # the source is only read
        assert f.read_bytes() == (TINY / f.relative_to(folder)).read_bytes(), f
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(("train-", "validation-"))) == [
        "manifest.json", "stats.npz"]
    from_folder = ip.load_data("imagenet_folder", folder, cache_dir=out.parent / "cache-folder")
    shards = ip.load_data("imagenet_folder", out)
    assert isinstance(shards, image_shards.ImageShards) and shards.classes == from_folder.classes == classes
    np.testing.assert_allclose(shards.stats.mean_image, from_folder.stats.mean_image, atol=1e-4)


@pytest.mark.parametrize("layout", ["official", "tfds"])
def test_the_same_images_get_the_same_labels_through_every_layout(folder, prepared, tmp_path, layout):
    classes = write_foreign_shards(folder, tmp_path, layout)
    foreign = ip.load_data("imagenet_folder", tmp_path, cache_dir=tmp_path / "cache")
    assert foreign.layout.startswith("official" if layout == "official" else "TFDS")
    assert foreign.eval_size() == 8 and foreign.train_size() == 20
    from_folder = ip.load_data("imagenet_folder", folder, cache_dir=tmp_path / "cache-folder")
    assert eval_labels_and_files(foreign) == eval_labels_and_files(from_folder) == \
        eval_labels_and_files(ip.load_data("imagenet_folder", prepared[0]))
    # full-size JPEGs are resized on the fly exactly as the folder's files are
    x_foreign = np.concatenate([x.numpy() for x, _ in foreign.eval_batches(8)])
    x_folder = np.concatenate([x.numpy() for x, _ in from_folder.eval_batches(8)])
    np.testing.assert_allclose(x_foreign + foreign.stats.mean_image[14:241, 14:241],
                               x_folder + from_folder.stats.mean_image[14:241, 14:241], atol=1e-3)
    assert len(classes) == 4


def test_training_from_shards_is_a_function_of_seed_epoch_and_position(prepared):
    data = ip.load_data("imagenet_folder", prepared[0])
    def batches(**position):
        return [(data.network_input(x).numpy(), y.numpy()) for x, y in data.train_batches(4, seed=3, **position)]
    epoch, again, resumed = batches(epoch=1), batches(epoch=1), batches(epoch=1, start_step=2)
    assert len(epoch) == 5 and len(resumed) == 3
    for (xa, ya), (xb, yb) in zip(epoch, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(epoch[2:], resumed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    other = np.concatenate([y.numpy() for _, y in data.train_batches(4, seed=3, epoch=2)])
    assert sorted(other) == sorted(np.concatenate([y for _, y in epoch])) and not np.array_equal(
        other, np.concatenate([y for _, y in epoch]))   # every image once an epoch, in another order
    rows = [np.concatenate([y.numpy() for _, y in data.train_batches(4, 3, 1, shard=(k, 2))]) for k in (0, 1)]
    np.testing.assert_array_equal(np.stack([r.reshape(-1, 2) for r in rows], 1).reshape(-1),
                                  np.concatenate([y for _, y in epoch]))   # two workers split every batch


def test_an_interrupted_preparation_continues_shard_by_shard_and_skips_unreadable_images(folder, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(folder, source)
    bad = source / "train" / sorted(p.name for p in (source / "train").iterdir())[0] / "broken.JPEG"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    first = prepare.prepare(source, out, images_per_shard=8)
    assert first["counts"]["train"] == 20 and first["skipped"] == [[str(bad), "could not be decoded"]]
    first_stats = shutil.copy(out / "stats.npz", tmp_path / "first_stats.npz")
    kept = out / "train-00000-of-00003"
    before = kept.stat().st_mtime_ns
    (out / "train-00001-of-00003").unlink()                     # killed while writing this shard
    (out / "train-00001-of-00003.tmp").write_bytes(b"partial")
    (out / "train-00002-of-00003.sums.npz").write_bytes(b"PK")   # a shard's files damaged: that shard again
    (out / "validation-00000-of-00001.json").write_text('{"count": ')
    again = prepare.prepare(source, out, images_per_shard=8)
    assert again["counts"] == first["counts"] and kept.stat().st_mtime_ns == before
    assert not list(out.glob("*.tmp"))
    np.testing.assert_array_equal(np.load(out / "stats.npz")["mean_image"], np.load(first_stats)["mean_image"])
    with open(out / "validation-00000-of-00001", "r+b") as f:   # a damaged shard is found by the check
        f.truncate(100)
    with pytest.raises(UserError, match="validation-00000-of-00001 is damaged; delete it and rerun"):
        prepare.verify(out, json.loads((out / "manifest.json").read_text()))


def test_a_full_disk_while_preparing_is_one_line_and_keeps_the_shards_written(folder, prepared, tmp_path,
                                                                              monkeypatch):
    real_writer = tf.io.TFRecordWriter

    class FullDisk(real_writer):   # the second shard's first record finds the disk full, as TFRecordWriter says it
        def write(self, record):
            if "train-00001" in self.path:
                raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")
            super().write(record)

        def __init__(self, path, *args):
            self.path = path
            super().__init__(path, *args)
    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDisk)
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"writing .*train-00001-of-00003 failed \(No space left on device\); free "
                                        r"space in .*out and rerun: the shards already written are kept"):
        prepare.prepare(folder, out, images_per_shard=8)
    assert sorted(p.name for p in out.iterdir()) == ["train-00000-of-00003", "train-00000-of-00003.json",
                                                     "train-00000-of-00003.sums.npz"]
    kept = (out / "train-00000-of-00003").stat().st_mtime_ns
    monkeypatch.setattr(tf.io, "TFRecordWriter", real_writer)
    assert prepare.prepare(folder, out, images_per_shard=8)["counts"] == prepared[1]["counts"]
    assert (out / "train-00000-of-00003").stat().st_mtime_ns == kept


def test_shards_of_one_split_only_are_an_error_naming_the_missing_split(prepared, tmp_path):
    shutil.copy(prepared[0] / "train-00000-of-00003", tmp_path)
    with pytest.raises(UserError, match="no validation shards"):
        ip.load_data("imagenet_folder", tmp_path)


def write_ilsvrc_tars(folder, root):
    """The folder as ILSVRC-2012 is downloaded: a training tar of per-class tars, a flat validation tar, and
    Caffe's val.txt beside them; returns {validation file name: label}."""
    import io
    import tarfile
    classes, _, val = image_folder.list_image_folder(folder)
    with tarfile.open(root / "ILSVRC2012_img_train.tar", "w") as outer:
        for wnid in classes:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for f in sorted((folder / "train" / wnid).iterdir()):
                    tar.add(f, arcname=f.name)
            info = tarfile.TarInfo(f"{wnid}.tar")
            info.size = inner.tell()
            inner.seek(0)
            outer.addfile(info, inner)
    truth = {}
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        for k, (path, label) in enumerate(val):
            name = f"ILSVRC2012_val_{k + 1:08d}.JPEG"
            tar.add(path, arcname=name)
            truth[name] = label
    (root / "val.txt").write_text("".join(f"{name} {label}\n" for name, label in truth.items()))
    return truth


def test_the_downloaded_tars_are_prepared_in_place_with_the_folders_labels(folder, prepared, tmp_path):
    truth = write_ilsvrc_tars(folder, tmp_path)
    with pytest.raises(UserError, match=f"{tmp_path} holds ILSVRC-2012's downloaded tars: prepare them once"):
        ip.load_data("imagenet_folder", tmp_path)   # training reads the prepared shards, not the tars
    out = tmp_path / "out"
    manifest = prepare.prepare(tmp_path, out, images_per_shard=8)
    assert manifest["counts"] == prepared[1]["counts"] and manifest["source_layout"].startswith("the downloaded tars")
    assert not (tmp_path / "train").exists()   # nothing extracted
    labels = {}
    for raw in tf.data.TFRecordDataset(str(out / "validation-00000-of-00001")):
        ex = tf.train.Example.FromString(raw.numpy()).features.feature
        labels[ex["image/filename"].bytes_list.value[0].decode()] = ex["image/class/label"].int64_list.value[0] - 1
    assert labels == truth
    from_tars = ip.load_data("imagenet_folder", out)
    from_folder = ip.load_data("imagenet_folder", prepared[0])
    np.testing.assert_allclose(from_tars.stats.mean_image, from_folder.stats.mean_image,
                               atol=1e-4)   # the same training images, read from the tars


def test_prepare_refuses_an_out_dir_it_cannot_write_before_reading_anything(tmp_path):
    result = subprocess.run([sys.executable, "-m", "replica.inputs.prepare", f"--data_dir={tmp_path}/none",
                             "--out_dir=/proc/no-folder-here"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: flag --out_dir=/proc/no-folder-here: not a folder this process can write to; "
        "python -m replica.inputs.prepare --helpfull lists the flags")

