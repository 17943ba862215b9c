"""ImageNet as TFRecord shards (replica.inputs.records): the official or TFDS layout, or the replica's prepared
shards, read in a seeded shard order through a seeded shuffle buffer."""
import pathlib

import numpy as np
import tensorflow as tf

from replica import paper
from replica.inputs import cache, ilsvrc, records
from replica.inputs.data_set import DataError
from replica.inputs.photos import Photos
from replica.inputs.transforms import StatsSums, example_seeds, load_stats


class ImageShards(Photos):
    """ImageNet as TFRecord shards (replica.inputs.records): the official or TFDS layout, or the replica's
    prepared shards.

    The mean image and PCA statistics come from the prepared shards' stats.npz, or are computed over the training
    shards once and cached in `cache_dir`. `train_limit` N trains on the first N examples in shard order.
    """
    name = "imagenet_folder"

    def __init__(self, data_dir, layout, train_files, val_files, input_size=paper.INPUT_SIZE, cache_dir=None,
                 train_limit=None, **kwargs):
        super().__init__(**kwargs)
        root = pathlib.Path(data_dir)
        manifest = records.manifest_of(root)
        self.source, self.layout, self.crop_size = str(root), layout.name, input_size
        self.classes = records.class_list(manifest)
        self.num_classes = len(self.classes)
        self.class_names = ilsvrc.class_names(self.classes)
        self.shards = {"train": records.Shards(layout, train_files), "eval": records.Shards(layout, val_files)}
        self.cache_dir = cache.folder(cache_dir, root, (len(train_files), len(val_files)))
        counts = manifest["counts"] if manifest else self._counted()
        self.counts = {"train": min(counts["train"], train_limit or counts["train"]), "eval": counts["eval"]}
        self.train_limit = train_limit
        self.stats = self._stats(root, manifest)
        self.skipped_files = {}

    def _counted(self):
        path = self.cache_dir / "counts.json"
        counts = cache.read_json(path)
        if counts is None:
            counts = {split: records.count_records(shards.files) for split, shards in self.shards.items()}
            cache.keep_json(path, counts)
        return counts

    def _stats(self, root, manifest):
        if manifest:   # prepared shards carry their statistics
            try:
                return load_stats(root / records.STATS)
            except cache.DAMAGED as e:
                raise DataError(f"{root / records.STATS} is damaged ({e}); rerun python -m replica.inputs.prepare "
                                "to rewrite it") from None
        cached = cache.read(self.cache_dir / records.STATS, load_stats)
        if cached is not None:
            return cached
        sums = StatsSums()
        for batch, _ in self._decoded(self._stream("train")).batch(64):
            sums.add(batch.numpy())
        stats = sums.stats()
        cache.keep_stats(self.cache_dir / records.STATS, stats)
        return stats

    def _count(self, split):
        return self.counts[split]

    def _stream(self, split, order=None):
        """(JPEG bytes, label) of the split: the training split's first `train_limit` examples when limited."""
        ds = self.shards[split].examples(order)
        return ds.take(self.counts[split]) if split == "train" and self.train_limit else ds

    @staticmethod
    def _decoded(ds):
        return ds.map(lambda encoded, label: (records.decode_jpeg_at_256(encoded), label),
                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _gather(self, split, indices):
        """The evaluation splits are read in order: `indices` must be 0, 1, ..., n - 1."""
        if not np.array_equal(indices, np.arange(len(indices))):
            raise ValueError("shards are read in order; only a prefix of a split can be gathered")
        return self._decoded(self._stream(split).take(len(indices)))

    def train_order(self, seed, epoch):
        """The examples of one epoch in training order, a function of (seed, epoch): the shards in a seeded order
        (unless limited to the first examples), then a seeded shuffle buffer."""
        rng = np.random.default_rng([seed, epoch])
        order = None if self.train_limit else rng.permutation(len(self.shards["train"].files))
        return self._stream("train", order).shuffle(records.SHUFFLE_BUFFER, seed=int(rng.integers(2**31 - 1)),
                                                    reshuffle_each_iteration=False)

    def train_batches(self, batch_size, seed, epoch, start_step=0, shard=(0, 1)):
        """As ImageData.train_batches, from the stream of `train_order`: position p of the epoch is the p-th
        example of that stream, and a resumed run skips the positions it has trained."""
        index, count = shard
        if batch_size % count:
            raise DataError(f"the batch of {batch_size} does not split evenly over {count} workers")
        per_worker = batch_size // count
        total = self.steps_per_epoch(batch_size) * batch_size
        positions = np.arange(start_step * batch_size, total)
        mine = (positions % batch_size) // per_worker == index
        ds = self.train_order(seed, epoch).take(total).skip(start_step * batch_size)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(
            (example_seeds(seed, epoch, positions), mine))))
        ds = ds.filter(lambda example, extra: extra[1])
        ds = ds.map(lambda example, extra: (self._train_transform(
            records.decode_jpeg_at_256(example[0]), extra[0]), example[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(per_worker, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
