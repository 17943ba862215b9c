"""What every data set of the replica is: a training split and an evaluation split (and, for CIFAR-10, a
validation split held out of the training images) with the paper's transforms (replica.inputs.transforms):
random crops and their mirrors, PCA colour noise when asked, the centre crop or the 10 crops for evaluation."""
import numpy as np
import tensorflow as tf

from replica.errors import UserError
from replica.inputs.transforms import ImageStats, centre_crop, epoch_order, example_seeds, pca_colour, ten_crops


class DataError(UserError, ValueError):
    """Data that cannot be used (missing or empty folder, unreadable batch); the message says what to do."""


class ImageData:
    """A training split and an evaluation split with the transforms of the paper.

    Subclasses provide `_stored(split)`: a tf.data.Dataset of (image, label) at the stored size, in the split's
    order, and `_count(split)`.
    """
    name = "data"
    num_classes = 0
    crop_size = 0
    stats: ImageStats

    def __init__(self, pca_colour_augment=False, augment=True):
        self.pca_colour_augment = pca_colour_augment
        self.augment = augment

    def train_size(self):
        return self._count("train")

    def eval_size(self):
        return self._count("eval")

    def steps_per_epoch(self, batch_size):
        return self.train_size() // batch_size

    def _prepare(self, image):
        """uint8 stored image -> float32 with the per-pixel mean image subtracted."""
        return tf.cast(image, tf.float32) - self.stats.mean_image

    def _prepare_batch(self, images):
        """A batch of stored uint8 images -> the centre crops the network sees."""
        return tf.map_fn(lambda im: centre_crop(self._prepare(im), self.crop_size), tf.convert_to_tensor(images),
                         fn_output_signature=tf.float32)

    def _train_transform(self, image, seed):
        """A random crop and, with probability 1/2, its horizontal mirror (paper 4.1); PCA colour when asked."""
        if not self.augment:
            return centre_crop(self._prepare(image), self.crop_size)
        image = tf.image.stateless_random_flip_left_right(self._random_crop(image, seed), seed=seed + 1)
        if self.pca_colour_augment:
            image = pca_colour(image, self.stats.eigenvalues, self.stats.eigenvectors, seed + 2)
        return image

    def network_input(self, images):
        """A training batch as `train_batches` yields it -> the float32 images the network takes (here the same)."""
        return images

    def _random_crop(self, image, seed):
        """A random crop_size x crop_size window of the prepared (mean-subtracted) stored image."""
        return tf.image.stateless_random_crop(self._prepare(image), [self.crop_size, self.crop_size, 3], seed=seed)

    def train_batches(self, batch_size, seed, epoch, start_step=0, shard=(0, 1)):
        """One epoch's batches of `batch_size` (the global batch) from batch `start_step` on; drops the last
        partial batch. shard (k, n): this worker's rows k*B/n..(k+1)*B/n of every global batch."""
        index, count = shard
        if batch_size % count:
            raise DataError(f"the batch of {batch_size} does not split evenly over {count} workers")
        order = epoch_order(self.train_size(), seed, epoch)
        positions = np.arange(start_step * batch_size, self.steps_per_epoch(batch_size) * batch_size)
        per_worker = batch_size // count
        positions = positions.reshape(-1, batch_size)[:, index * per_worker:(index + 1) * per_worker].ravel()
        batch_size = per_worker
        indices = order[positions]
        seeds = example_seeds(seed, epoch, positions)
        ds = self._gather("train", indices)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(seeds)))
        ds = ds.map(lambda example, s: (self._train_transform(example[0], s), example[1]),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def has_validation(self):
        """Whether a validation split was held out of the training images (else the schedule watches "eval")."""
        return False

    def eval_batches(self, batch_size, ten_crop=False, limit=None, split="eval"):
        """The evaluation split ("val": the held-out validation split), its first `limit` images (0 or None: all):
        centre crops [B, S, S, 3], or the 10 crops [B, 10, S, S, 3]."""
        size = self._count(split)
        count = min(limit, size) if limit else size
        crop = (lambda im: ten_crops(self._prepare(im), self.crop_size)) if ten_crop else \
            (lambda im: centre_crop(self._prepare(im), self.crop_size))
        ds = self._gather(split, np.arange(count))
        ds = ds.map(lambda im, label: (crop(im), label), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
