"""ImageNet as TFRecord shards: the layouts others write, and the replica's own prepared shards.

Three layouts are read, with tf.data alone (neither writer needs to be installed):

- tensorflow/models' official ImageNet shards, `train-00000-of-01024` ... and `validation-00000-of-00128`, whose
  examples hold `image/encoded` (the JPEG) and `image/class/label`, 1-based over the sorted wnids
  (`image/class/synset` names the wnid);
- TFDS's `imagenet2012`, `imagenet2012-train.tfrecord-00000-of-01024` ... and `imagenet2012-validation.tfrecord-*`,
  whose examples hold `image` (the JPEG) and `label`, 0-based;
- the replica's own, written by `python -m replica.inputs.prepare` in the official layout, with a `manifest.json` beside
  them (counts, classes, the per-pixel mean and PCA statistics in `stats.npz`).

Labels everywhere are the 0-based index of the sorted wnid, so a net trained from one layout evaluates on another.
The training order is a function of (seed, epoch): the shards in a seeded order, read one after another, through a
seeded shuffle buffer; crops, mirrors and PCA noise are functions of (seed, epoch, position) as for the other data
sets, so a resumed run (which skips the positions already trained) reproduces an uninterrupted one.
"""
import dataclasses
import pathlib
import re

import numpy as np
import tensorflow as tf

from replica.inputs import ilsvrc
from replica import paper
from replica.files import read_json
from replica.errors import UserError

MANIFEST = "manifest.json"
STATS = "stats.npz"
SHUFFLE_BUFFER = 10_000   # examples; the official and TFDS shards are each already a random mix of classes


class ShardError(UserError):
    """Shards that cannot be read as one of the layouts above."""


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    train_pattern: str
    eval_pattern: str
    image_key: str
    label_key: str
    label_offset: int      # subtract from the stored label to get the 0-based sorted-wnid index


LAYOUTS = (
    Layout("official (tensorflow/models)", r"train-\d{5}-of-\d{5}$", r"validation-\d{5}-of-\d{5}$",
           "image/encoded", "image/class/label", 1),
    Layout("TFDS imagenet2012", r"imagenet2012-train\.tfrecord-\d{5}-of-\d{5}$",
           r"imagenet2012-validation\.tfrecord-\d{5}-of-\d{5}$", "image", "label", 0),
)


def shard_files(root, pattern):
    return sorted(str(p) for p in pathlib.Path(root).iterdir() if re.match(pattern, p.name))


def detect(root):
    """(Layout, train shards, validation shards) of a folder, or None when it holds no shards of any layout."""
    root = pathlib.Path(root)
    if not root.is_dir():
        return None
    for layout in LAYOUTS:
        train, val = shard_files(root, layout.train_pattern), shard_files(root, layout.eval_pattern)
        if train or val:
            if not (train and val):
                missing = "training" if not train else "validation"
                raise ShardError(f"{root} holds {layout.name} shards but no {missing} shards; both splits are needed")
            return layout, train, val
    return None


def parse(layout):
    """serialized Examples [N] -> (JPEG bytes [N], 0-based labels [N])."""
    features = {layout.image_key: tf.io.FixedLenFeature([], tf.string),
                layout.label_key: tf.io.FixedLenFeature([], tf.int64)}

    def parse_many(serialized):
        examples = tf.io.parse_example(serialized, features)
        return examples[layout.image_key], examples[layout.label_key] - layout.label_offset
    return parse_many


PARSE_BATCH = 256   # examples parsed by one op: the per-example cost of parsing one at a time is the stream's largest


def count_records(files):
    return int(tf.data.TFRecordDataset(files).reduce(np.int64(0), lambda n, _: n + 1))


class Shards:
    """The examples of one split: (JPEG bytes, label) in a given shard order."""

    def __init__(self, layout, files):
        self.layout, self.files = layout, list(files)

    def examples(self, order=None):
        files = self.files if order is None else [self.files[i] for i in order]
        ds = tf.data.TFRecordDataset(files, num_parallel_reads=None)   # in order: deterministic
        # parsed PARSE_BATCH at a time and unbatched again: the same examples in the same order
        return ds.batch(PARSE_BATCH).map(parse(self.layout), num_parallel_calls=tf.data.AUTOTUNE,
                                          deterministic=True).unbatch()


def decode_jpeg_at_256(encoded):
    """JPEG bytes -> 256x256 uint8: the prepared shards are 256x256 already (decoded as they are); others are resized
    and cropped as the image folders are (PAPER.md 3)."""
    from replica.inputs.transforms import resize_and_centre_crop
    image = tf.io.decode_jpeg(encoded, channels=3)
    size = paper.RESIZE_SHORTER_SIDE
    shape = tf.shape(image)
    return tf.cond(tf.logical_and(shape[0] == size, shape[1] == size),
                   lambda: image, lambda: resize_and_centre_crop(image, size))


def manifest_of(root):
    path = pathlib.Path(root) / MANIFEST
    if not path.is_file():
        return None
    return read_json(path, ShardError, "rerun python -m replica.inputs.prepare to rewrite it")


def class_list(manifest):
    """The wnids in label order: the manifest's, else ILSVRC-2012's 1,000 (the official and TFDS shards)."""
    if manifest:
        return list(manifest["classes"])
    return list(ilsvrc.class_table())
