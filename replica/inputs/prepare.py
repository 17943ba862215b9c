"""Prepare ImageNet once, as the paper did (PAPER.md 3: "down-sampled the images to a fixed resolution of 256 x
256"): every image read once, its shorter side scaled to 256, its central 256x256 kept and re-encoded as JPEG
into TFRecord shards that training reads directly (`--data_dir=OUT`).

  python -m replica.inputs.prepare --data_dir=/data/ilsvrc2012 --out_dir=/data/ilsvrc2012-256

The source is ILSVRC-2012's two tar files as downloaded (`ILSVRC2012_img_train.tar`, `ILSVRC2012_img_val.tar` and a
validation label file beside them: replica.inputs.tars reads them in place, without extraction), or any image-folder
layout `--dataset=imagenet_folder` reads (train/<wnid>/ with val/<wnid>/ or a flat val/ and its label file).
Written to OUT, in the official layout (replica.inputs.records): `train-00000-of-NNNNN` ...
and `validation-00000-of-MMMMM` (`image/encoded`, `image/class/label` 1-based over the sorted wnids,
`image/class/synset`, `image/filename`), the per-pixel mean image and PCA colour statistics of the training
images (`stats.npz`, PAPER.md 3), and `manifest.json`: counts, classes with names, skipped files and why, the
source and its layout, the settings. One pass, decoding and encoding on every core (tf.data); the training files
are shuffled once (seed 0) so each shard mixes the classes. Each shard is written to a temporary name and renamed
when whole, with its share of the statistics beside it, so an interrupted run continues shard by shard. Unreadable
images are skipped and counted. At the end every shard is read back and its count checked against the manifest.
On ILSVRC-2012 the output should be about 20 GB (1.33 M images at about 15 KB) instead of 140 GB.
"""
import json
import math
import os
import pathlib
import time

import numpy as np
import tensorflow as tf
from absl import logging

from replica.inputs import cache, ilsvrc, image_folder, photos, records, tars, transforms
from replica import paper
from replica.files import failure_reason, remove_leftovers, write_whole_or_raise
from replica.errors import UserError, run_main, writable_folder_flag

IMAGES_PER_SHARD = 1024
QUALITY = 90


def shard_name(split, index, count):
    return f"{'train' if split == 'train' else 'validation'}-{index:05d}-of-{count:05d}"


def example(encoded, label, wnid, filename):
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label + 1])),   # 1-based
        "image/class/synset": tf.train.Feature(bytes_list=tf.train.BytesList(value=[wnid.encode()])),
        "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[paper.RESIZE_SHORTER_SIDE])),
        "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[paper.RESIZE_SHORTER_SIDE])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def resized_and_encoded(items, quality):
    """(name, label, 256x256 uint8, JPEG bytes) of each readable image, in order, decoded on every core. items:
    [(file path or replica.inputs.tars.Member, label)]; the name is the path, or tar:member for an image in a tar."""
    names = [item if isinstance(item, str) else f"{item.tar}:{item.name}" for item, _ in items]
    offsets = [-1 if isinstance(item, str) else item.offset for item, _ in items]
    tar_of = {n: item for n, (item, _) in zip(names, items) if not isinstance(item, str)}

    def read_member(name):
        return tars.read(tar_of[name.numpy().decode()])

    def load(name, offset, label):
        encoded = tf.cond(offset < 0, lambda: tf.io.read_file(name),
                          lambda: tf.py_function(read_member, [name], tf.string))
        image = transforms.resize_and_centre_crop(
            tf.io.decode_image(encoded, channels=3, expand_animations=False))
        return name, label, image, tf.io.encode_jpeg(image, quality=quality)
    labels = np.array([y for _, y in items], np.int64)
    ds = tf.data.Dataset.from_tensor_slices((names, np.array(offsets, np.int64), labels))
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()


def file_name(source):
    """The image's own name: the file name of a path or of a tar member ("....tar:n01440764_10026.JPEG")."""
    return pathlib.Path(source.split(":")[-1]).name


def write_shard(out, name, files, classes, quality, with_stats):
    """Write one shard (atomically) and its record `<name>.json` (count, skipped files, statistics' sums)."""
    names = [item if isinstance(item, str) else f"{item.tar}:{item.name}" for item, _ in files]
    sums, written = transforms.StatsSums(), set()
    tmp = out / f"{name}.tmp"
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for source, label, image, encoded in resized_and_encoded(files, quality):
                source = source.numpy().decode()
                writer.write(example(encoded.numpy(), int(label), classes[int(label)], file_name(source)))
                written.add(source)
                if with_stats:
                    sums.add(image.numpy())
        record = {"count": len(written), "skipped": [[n, "could not be decoded"] for n in names if n not in written]}
        if with_stats:
            sums.save(out / f"{name}.sums.npz")
        (out / f"{name}.json").write_text(json.dumps(record))
    except (OSError, tf.errors.OpError) as e:   # a full disk: TFRecordWriter raises TensorFlow's error
        tmp.unlink(missing_ok=True)
        raise UserError(f"writing {out / name} failed ({failure_reason(e)}); {after_a_full_disk(out)}") from None
    os.replace(tmp, out / name)   # the shard counts as written only from here
    return record


def written_earlier(out, name, with_stats):
    """The record of a shard an earlier run wrote whole (its sums too, for a training shard), or None: a shard to
    write (again, when a file of it is damaged)."""
    if not (out / name).is_file():
        return None
    if with_stats and cache.read(out / f"{name}.sums.npz", transforms.StatsSums.load) is None:
        return None
    return cache.read_json(out / f"{name}.json")


def prepare(data_dir, out_dir, images_per_shard=IMAGES_PER_SHARD, quality=QUALITY):
    """Write the shards, the statistics and the manifest (module docstring); return the manifest."""
    out = pathlib.Path(out_dir)
    if records.detect(data_dir):
        raise UserError(f"{data_dir} holds TFRecord shards already: train from it directly (--data_dir={data_dir})")
    classes, train, val = (tars.list_tars if tars.found(data_dir) else image_folder.list_image_folder)(data_dir)
    train = [train[i] for i in np.random.default_rng(0).permutation(len(train))]
    out.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)   # a shard or manifest a killed run was writing
    shards = []
    for split, files in (("train", train), ("eval", val)):
        count = max(1, math.ceil(len(files) / images_per_shard))
        shards += [(split, shard_name(split, k, count), files[k * images_per_shard:(k + 1) * images_per_shard])
                   for k in range(count)]
    total, done, start = sum(len(f) for _, _, f in shards), 0, time.time()
    results = {}
    for k, (split, name, files) in enumerate(shards):
        earlier = written_earlier(out, name, with_stats=split == "train")
        if earlier is not None:
            results[name] = earlier
        else:
            results[name] = write_shard(out, name, files, classes, quality, with_stats=split == "train")
            done += len(files)
            rate = done / (time.time() - start)
            left = sum(len(f) for _, n, f in shards[k + 1:] if not (out / n).is_file())
            logging.info("%s: %d images (%d skipped); %.0f images/s, %s left", name, results[name]["count"],
                         len(results[name]["skipped"]), rate, time.strftime("%H:%M:%S", time.gmtime(left / rate)))
    write_stats(out, [name for split, name, _ in shards if split == "train"])
    manifest = {
        "source": str(pathlib.Path(data_dir).resolve()), "source_layout": layout_of(data_dir),
        "settings": {"shorter_side": paper.RESIZE_SHORTER_SIDE, "crop": "central 256x256", "jpeg_quality": quality,
                     "images_per_shard": images_per_shard, "train_order": "shuffled once, seed 0",
                     "labels": "image/class/label is 1-based over the sorted wnids (tensorflow/models' layout)"},
        "classes": classes, "class_names": ilsvrc.class_names(classes),
        "counts": {split: sum(results[n]["count"] for s, n, _ in shards if s == split) for split in ("train", "eval")},
        "shards": {name: results[name]["count"] for _, name, _ in shards},
        "skipped": [s for name in results for s in results[name]["skipped"]],
        "images_considered": total,
    }
    write_whole_or_raise(UserError, out / records.MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)),
                         after_a_full_disk(out))
    verify(out, manifest)
    return manifest


def layout_of(data_dir):
    root = pathlib.Path(data_dir)
    if tars.found(root):
        return f"the downloaded tars ({tars.TRAIN_TAR}: a tar per class; {tars.VAL_TAR}: flat, with its label file)"
    val = root / "val"
    flat = val.is_dir() and any(photos.is_image_file(f) for f in val.iterdir())
    return "train/<wnid>/ with a flat val/ and its label file" if flat else "train/<wnid>/ and val/<wnid>/"


def write_stats(out, train_shards):
    """The per-pixel mean image and PCA statistics of all training shards, from their sums."""
    sums = transforms.StatsSums()
    for name in train_shards:
        sums.merge(transforms.StatsSums.load(out / f"{name}.sums.npz"))
    if not sums.count:
        raise UserError(f"no training image of the source could be decoded; nothing written to {out}")
    stats = sums.stats()
    write_whole_or_raise(UserError, out / records.STATS, lambda tmp: transforms.save_stats(stats, tmp),
                         after_a_full_disk(out))


def after_a_full_disk(out):
    return f"free space in {out} and rerun: the shards already written are kept"


def verify(out, manifest):
    """Every shard readable to its end, with the count the manifest gives it."""
    for name, expected in manifest["shards"].items():
        try:
            found = records.count_records([str(out / name)])
        except tf.errors.DataLossError:
            raise UserError(f"{out / name} is damaged; delete it and rerun to write it again") from None
        if found != expected:
            raise UserError(f"{out / name} holds {found} images, the manifest says {expected}; delete it and rerun")


def main(argv):
    from absl import flags
    f = flags.FLAGS
    if not f.data_dir or not f.out_dir:
        raise UserError("name the source and the destination: "
                        "python -m replica.inputs.prepare --data_dir=SRC --out_dir=DST")
    if f.images_per_shard < 1 or not 1 <= f.quality <= 100:
        raise UserError("--images_per_shard must be positive and --quality in 1..100")
    manifest = prepare(f.data_dir, f.out_dir, f.images_per_shard, f.quality)
    print(f"{f.out_dir}: {manifest['counts']['train']:,} training and {manifest['counts']['eval']:,} validation "
          f"images in {len(manifest['shards'])} shards ({len(manifest['skipped'])} unreadable skipped); every shard "
          f"read back and counted. Train with --dataset=imagenet_folder --data_dir={f.out_dir}")
    return 0


if __name__ == "__main__":
    from absl import flags
    flags.DEFINE_string("data_dir", None, "The source: an ImageNet-style image folder (train/ and val/).")
    flags.DEFINE_string("out_dir", None, "Where the shards, stats.npz and manifest.json are written.")
    writable_folder_flag("out_dir")
    flags.DEFINE_integer("images_per_shard", IMAGES_PER_SHARD, "Images per shard.", lower_bound=1)
    flags.DEFINE_integer("quality", QUALITY, "JPEG quality of the re-encoded 256x256 images.", lower_bound=1,
                         upper_bound=100)
    run_main(main)
