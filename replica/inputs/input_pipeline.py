"""Data the paper's way (PAPER.md 3, paper 2 and 4.1), in tf.data pipelines that overlap with training.

Two sources share one set of transforms:
- CIFAR-10 from the canonical `cifar-10-batches-py` pickles (the shipped slice by default), held in memory;
- an ImageNet-style class-folder tree (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`), decoded in parallel,
  shorter side to 256, centre 256x256 crop, optionally cached decoded.

Both subtract the training set's per-pixel mean image and train on random crops and their mirrors (plus PCA
colour noise when asked); evaluation takes the centre crop or the 10 crops (4 corners + centre, and mirrors).
The order of an epoch and every random draw are functions of (seed, epoch, position), so a resumed run sees the
batches an uninterrupted one would.
"""
import dataclasses
import hashlib
import json
import os
import pathlib
import pickle

import numpy as np
import tensorflow as tf
from absl import logging

from replica.inputs import ilsvrc, records
from replica import paper
from replica.errors import UserError

PACKAGE_DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
CIFAR10_SLICE = PACKAGE_DATA / "cifar-10-slice"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_PAD = 4                      # CIFAR-10 crops: 32x32 out of the mean-subtracted image padded to 40x40
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif")


class DataError(UserError, ValueError):
    """Data that cannot be used (missing or empty folder, unreadable batch); the message says what to do."""


# --- CIFAR-10 ---------------------------------------------------------------------------------------------------
def read_cifar_batch(path):
    """One canonical pickle -> (N x 32 x 32 x 3 uint8 images, N int64 labels)."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({e}); re-extract cifar-10-python.tar.gz")
    problem = cifar_batch_problem(data, labels)
    if problem:
        raise DataError(f"{path} is not a CIFAR-10 batch: {problem}; re-extract cifar-10-python.tar.gz")
    # rows are R, G, B planes of 32x32, row-major
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def cifar_batch_problem(data, labels):
    """What makes a batch's arrays unusable (None when they are fine): rows of 3,072 bytes, one label in 0..9 each."""
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        return f"its rows hold {data.shape[1:] or 'no'} values, not 3,072 (32 x 32 x 3)"
    if labels.ndim != 1 or len(labels) != len(data):
        return f"it has {len(labels)} labels for {len(data)} images"
    if len(labels) and (labels.min() < 0 or labels.max() >= 10):
        return f"its labels run from {labels.min()} to {labels.max()}, not within 0..9"
    return None


def load_cifar10(data_dir=None):
    """(train images, train labels, test images, test labels) from a `cifar-10-batches-py` folder.

    data_dir None reads the shipped slice (2,000 train / 500 test real images); "download" fetches the full set
    through Keras into ~/.keras/datasets (needs internet).
    """
    if data_dir == "download":
        data_dir = download_cifar10()
    folder = pathlib.Path(data_dir) if data_dir else CIFAR10_SLICE
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {folder} does not exist; point --data_dir at a cifar-10-batches-py folder")
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise DataError(f"{folder} has no data_batch_* / test_batch files; point --data_dir at a "
                        "cifar-10-batches-py folder")
    train = [read_cifar_batch(p) for p in train_files]
    test_images, test_labels = read_cifar_batch(folder / "test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), test_images, test_labels)


def cifar10_class_names(data_dir=None):
    """The ten class names of batches.meta ("airplane", ...), in label order."""
    folder = pathlib.Path(data_dir) if data_dir and pathlib.Path(data_dir).is_dir() else CIFAR10_SLICE
    with open(folder / "batches.meta", "rb") as f:
        return [name.decode() for name in pickle.load(f, encoding="bytes")[b"label_names"]]


def download_cifar10():
    """Download and extract CIFAR-10 through Keras (used only when --data_dir=download); returns the folder."""
    import keras
    path = keras.utils.get_file("cifar-10-python.tar.gz", CIFAR10_URL, extract=True)
    candidates = list(pathlib.Path(path).parent.rglob("cifar-10-batches-py"))
    if not candidates:
        raise DataError(f"the download at {path} holds no cifar-10-batches-py folder")
    return str(candidates[0])


def write_cifar10_slice(source_dir, target_dir, train=2000, test=500, per_file=1000):
    """Cut the shipped slice: the first `train` images of data_batch_1 and the first `test` of test_batch."""
    target = pathlib.Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)

    def load(name):
        with open(pathlib.Path(source_dir) / name, "rb") as f:
            return pickle.load(f, encoding="bytes")

    def write(name, batch, lo, hi, source):
        out = {b"batch_label": f"slice: images {lo}-{hi - 1} of {source}".encode(),
               b"labels": list(batch[b"labels"][lo:hi]),
               b"data": np.ascontiguousarray(batch[b"data"][lo:hi]), b"filenames": list(batch[b"filenames"][lo:hi])}
        with open(target / name, "wb") as f:
            pickle.dump(out, f, protocol=4)

    source_train = load("data_batch_1")
    for k, lo in enumerate(range(0, train, per_file)):
        write(f"data_batch_{k + 1}", source_train, lo, min(lo + per_file, train), "data_batch_1")
    write("test_batch", load("test_batch"), 0, test, "test_batch")


# --- statistics of the training set -----------------------------------------------------------------------------
@dataclasses.dataclass
class ImageStats:
    """Per-pixel mean image (0-255) and the RGB covariance's eigenvalues/vectors (pixels scaled to [0, 1])."""
    mean_image: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray   # columns are p_1..p_3


def stats_from_sums(pixel_sum, outer_sum, rgb_sum, num_images, num_pixels):
    mean_image = (pixel_sum / num_images).astype(np.float32)
    rgb_mean = rgb_sum / num_pixels
    covariance = outer_sum / num_pixels - np.outer(rgb_mean, rgb_mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return ImageStats(mean_image, eigenvalues.astype(np.float32), eigenvectors.astype(np.float32))


class StatsSums:
    """Running sums over images of one size for ImageStats: the per-pixel sum and the RGB values' sums and outer
    products (pixels scaled to [0, 1]); added batch by batch, merged across shards, saved and loaded."""

    def __init__(self, size=paper.RESIZE_SHORTER_SIDE):
        self.pixel_sum, self.outer_sum, self.rgb_sum, self.count = np.zeros((size, size, 3)), np.zeros((3, 3)), \
            np.zeros(3), 0

    def add(self, images):
        """Add uint8 images [N, S, S, 3] (or one [S, S, 3])."""
        x = np.asarray(images, np.float64).reshape(-1, *self.pixel_sum.shape)
        self.pixel_sum += x.sum(0)
        rgb = x.reshape(-1, 3) / 255.0
        self.outer_sum += rgb.T @ rgb
        self.rgb_sum += rgb.sum(0)
        self.count += len(x)
        return self

    def merge(self, other):
        for name in ("pixel_sum", "outer_sum", "rgb_sum", "count"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def stats(self):
        pixels = self.count * self.pixel_sum.shape[0] * self.pixel_sum.shape[1]
        return stats_from_sums(self.pixel_sum, self.outer_sum, self.rgb_sum, self.count, pixels)

    def save(self, path):
        np.savez(path, pixel_sum=self.pixel_sum, outer_sum=self.outer_sum, rgb_sum=self.rgb_sum, count=self.count)

    @classmethod
    def load(cls, path):
        sums, saved = cls(), np.load(path)
        sums.pixel_sum, sums.outer_sum, sums.rgb_sum = saved["pixel_sum"], saved["outer_sum"], saved["rgb_sum"]
        sums.count = int(saved["count"])
        return sums


def save_stats(stats, path):
    """Write ImageStats to an .npz file atomically (a killed write leaves no half file under `path`)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")   # processes sharing a cache never share a temporary file
    np.savez(tmp, mean_image=stats.mean_image, eigenvalues=stats.eigenvalues, eigenvectors=stats.eigenvectors)
    os.replace(tmp, path)


def load_stats(path):
    saved = np.load(path)
    return ImageStats(saved["mean_image"], saved["eigenvalues"], saved["eigenvectors"])


def image_stats(images):
    """ImageStats of an in-memory uint8 array N x H x W x 3."""
    return StatsSums(images.shape[1]).add(images).stats()


# --- the transforms (PAPER.md 3) ----------------------------------------------------------------------------------
def pca_shift(eigenvalues, eigenvectors, seed):
    """[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, 0.1) drawn once per image, added to every pixel (paper 4.1).

    lambda_i and p_i are of the covariance of RGB values scaled to [0, 1]; the shift is returned on the 0-255 scale.
    """
    alpha = tf.random.stateless_normal([3], seed=seed, stddev=paper.PCA_ALPHA_STDDEV)
    return tf.linalg.matvec(eigenvectors, alpha * eigenvalues) * 255.0


def pca_colour(image, eigenvalues, eigenvectors, seed):
    """The image with its PCA colour shift (`pca_shift`) added to every pixel."""
    return image + pca_shift(eigenvalues, eigenvectors, seed)


def centre_crop(image, size):
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top:top + size, left:left + size]


def ten_crops(image, size):
    """The 4 corner crops, the centre crop, and their mirrors: [10, size, size, 3] (paper 4.1)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    crops = [image[:size, :size], image[:size, width - size:], image[height - size:, :size],
             image[height - size:, width - size:], centre_crop(image, size)]
    crops = tf.stack(crops)
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)


def epoch_order(num_examples, seed, epoch):
    """The permutation of one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def example_seeds(seed, epoch, positions):
    """A stateless seed per example: [seed, epoch * 2^32 + position]."""
    positions = np.asarray(positions, dtype=np.int64)
    return np.stack([np.full_like(positions, seed), (np.int64(epoch) << 32) + positions], axis=1)


# --- data sets -----------------------------------------------------------------------------------------------------
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
        """The evaluation split ("val": the held-out validation split): centre crops [B, S, S, 3], or the 10
        crops [B, 10, S, S, 3]."""
        size = self._count(split)
        count = size if limit is None else min(limit, size)
        crop = (lambda im: ten_crops(self._prepare(im), self.crop_size)) if ten_crop else \
            (lambda im: centre_crop(self._prepare(im), self.crop_size))
        ds = self._gather(split, np.arange(count))
        ds = ds.map(lambda im, label: (crop(im), label), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class Cifar10(ImageData):
    """CIFAR-10 in memory; the evaluation split is the test batch. Crops of 32 out of the image padded to 40x40,
    or (crop_size 24, cuda-convnet's 11% net) crops of 24 out of the 32x32 image and its centre 24 for testing.

    validation_images N: the last N of the 50,000 training images become a validation split ("val") that the
    learning-rate schedule watches, held out before train_limit takes the first images of the rest; the test
    batch is then only ever reported.
    """
    name = "cifar10"
    num_classes = 10

    def __init__(self, data_dir=None, train_limit=None, eval_limit=None, crop_size=32, validation_images=0,
                 **kwargs):
        super().__init__(**kwargs)
        if crop_size not in (24, 32):
            raise DataError(f"CIFAR-10 crops are 32 (padded) or 24, not {crop_size}")
        self.crop_size = crop_size
        x_train, y_train, x_test, y_test = load_cifar10(data_dir)
        if validation_images:
            if validation_images >= len(y_train):
                raise DataError(f"--validation_images={validation_images} leaves no training image of "
                                f"{len(y_train)}; hold out fewer")
            x_val, y_val = x_train[-validation_images:], y_train[-validation_images:]
            x_train, y_train = x_train[:-validation_images], y_train[:-validation_images]
        if train_limit:
            x_train, y_train = x_train[:train_limit], y_train[:train_limit]
        if eval_limit:
            x_test, y_test = x_test[:eval_limit], y_test[:eval_limit]
        self.source = str(data_dir or CIFAR10_SLICE)
        self.splits = {"train": (x_train, y_train), "eval": (x_test, y_test)}
        if validation_images:
            self.splits["val"] = (x_val, y_val)
        self.stats = image_stats(x_train)

    def has_validation(self):
        return "val" in self.splits

    def _count(self, split):
        return len(self.splits[split][1])

    def _gather(self, split, indices):
        images, labels = self.splits[split]
        return tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))

    def _prepare(self, image):
        # mean-subtracted, then padded with zeros (= the mean pixel) so that crops can move by up to 4 pixels
        image = super()._prepare(image)
        if self.crop_size < 32:
            return image
        return tf.pad(image, [[CIFAR_PAD, CIFAR_PAD], [CIFAR_PAD, CIFAR_PAD], [0, 0]])


def is_image_file(path):
    """An image by its extension; hidden files (a name starting with a dot, such as macOS' ._x.JPEG) are not."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def class_images(split_dir):
    """{class folder name: sorted image paths} of a class-folder split. Only folders that hold images are
    classes; hidden entries are ignored. DataError if the split is missing or holds no images."""
    split_dir = pathlib.Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} does not exist; --data_dir must hold train/<class>/ and val/<class>/ folders")
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    images = {folder.name: sorted(str(f) for f in folder.iterdir() if is_image_file(f)) for folder in folders}
    images = {name: files for name, files in images.items() if files}
    if not images:
        raise DataError(f"{split_dir} holds no images in class folders (<class>/*.JPEG); check --data_dir")
    return images


def list_class_folders(split_dir, classes=None):
    """(sorted class names, [(path, label)]) of a class-folder split; labels index `classes` (default: this
    split's own classes)."""
    images = class_images(split_dir)
    classes = classes or sorted(images)
    return classes, [(f, label) for label, c in enumerate(classes) for f in images.get(c, [])]


def matching_classes(train_dir, val_dir):
    """The classes of a train/val pair of class-folder splits: a class with images in one split and none in the
    other is a DataError naming it."""
    train, val = class_images(train_dir), class_images(val_dir)
    for name, here, there in ((train_dir, train, val), (val_dir, val, train)):
        missing = sorted(set(here) - set(there))
        if missing:
            other = val_dir if name == train_dir else train_dir
            raise DataError(f"class {missing[0]} has images in {name} but none in {other}"
                            + (f" (and {len(missing) - 1} more such classes)" if len(missing) > 1 else "")
                            + "; the two splits must have the same classes")
    return sorted(train)


def decode_and_resize(path, size=paper.RESIZE_SHORTER_SIDE):
    """File -> size x size uint8: decode (any format, grey to RGB), shorter side to `size`, centre crop (paper 2)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return resize_and_centre_crop(image, size)


def read_image(path):
    """An image file as uint8 RGB [H, W, 3] (any format TensorFlow decodes, grey to RGB); a DataError naming the
    file when it is missing or not an image."""
    try:
        return tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise DataError(f"{path}: not a readable image ({e.message.splitlines()[0][:120]})") from None


def resize_and_centre_crop(image, size=paper.RESIZE_SHORTER_SIDE):
    """uint8 [H, W, 3] -> size x size uint8: shorter side to `size` (antialiased), then the central square."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    image = tf.image.resize(image, new_shape, method="bilinear", antialias=True)
    image = centre_crop(image, size)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def list_image_folder(root):
    """(classes: the sorted wnids, train [(path, label)], val [(path, label)]) of an ImageNet-style folder:
    train/<class>/ with val/<class>/, or with a flat val/ and its label file (replica.inputs.ilsvrc)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; point --data_dir at a folder with train/ and val/")
    flat_val = sorted(str(f) for f in (root / "val").iterdir() if is_image_file(f)) \
        if (root / "val").is_dir() else []
    if flat_val:   # the validation tar as extracted: its labels come from a label file (replica.inputs.ilsvrc)
        classes = sorted(class_images(root / "train"))
        val = ilsvrc.labelled_flat_val(root, flat_val, classes)
    else:
        classes = matching_classes(root / "train", root / "val")
        _, val = list_class_folders(root / "val", classes)
    _, train = list_class_folders(root / "train", classes)
    return classes, train, val


class Photos(ImageData):
    """Photos stored at 256x256 (image folders and TFRecord shards), whose training stream stays uint8 until the
    device.

    The host decodes each photo and draws its crop, mirror and PCA colour shift; `network_input`, run inside the
    training step on the device, finishes the batch in one compiled pass: the crop_size window, mirrored or not,
    to float, minus the mean image's same window, plus the shift. The numbers are those of finishing each image
    on the host (tests/test_input_pipeline.py), without the host's per-image copies and float passes, which would
    otherwise cost it about as much as the decoding (docs/performance.md).
    """

    def _train_transform(self, image, seed):
        """{pixels: the stored uint8 photo, top, left (its window), mirrored, colour (the PCA shift)}."""
        size, stored = self.crop_size, paper.RESIZE_SHORTER_SIDE
        if self.augment:
            top, left = tf.unstack(tf.random.stateless_uniform([2], seed, maxval=stored - size + 1, dtype=tf.int32))
            mirrored = tf.random.stateless_uniform([], seed=seed + 1) < 0.5   # the draw of stateless_random_flip
        else:
            top = left = tf.constant((stored - size) // 2)
            mirrored = tf.constant(False)
        colour = pca_shift(self.stats.eigenvalues, self.stats.eigenvectors, seed + 2) \
            if self.augment and self.pca_colour_augment else tf.zeros([3])
        return {"pixels": image, "top": top, "left": left, "mirrored": mirrored, "colour": colour}

    def network_input(self, images):
        """The batch `train_batches` yields -> float32 [B, S, S, 3]: each photo's window, mirrored or not, minus
        the mean image's same window, plus its colour shift (on the device, inside the step)."""
        return finish_windows(images["pixels"], images["top"], images["left"], images["mirrored"],
                              images["colour"], tf.constant(self.stats.mean_image), self.crop_size)


@tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
def finish_windows(pixels, top, left, mirrored, colour, mean_image, size):
    """float32(pixels[top:top+S, left:left+S]) - mean_image[top:top+S, left:left+S], mirrored where asked, plus
    colour, per image: one compiled pass over the batch (XLA fuses the gathers, the cast and the arithmetic)."""
    offsets = tf.range(size)
    rows = top[:, None] + offsets
    cols = left[:, None] + tf.where(mirrored[:, None], size - 1 - offsets, offsets)

    def window(images):   # [B, 256, 256, 3] or [256, 256, 3] -> [B, S, S, 3]
        if images.shape.rank == 3:
            return tf.gather(tf.gather(images, rows), cols, axis=2, batch_dims=1)
        return tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    return tf.cast(window(pixels), tf.float32) - window(mean_image) + colour[:, None, None, :]


class ImageFolder(Photos):
    """An ImageNet-style tree: train/<class>/*.JPEG and val/<class>/*.JPEG, or a flat val/ with its label file as
    ILSVRC-2012 is distributed (replica.inputs.ilsvrc).

    The per-pixel mean image and the PCA statistics are computed over the training set once and cached in
    `cache_dir`; `cache_decoded` keeps the decoded 256x256 images in memory (196 KB an image: for data sets that
    fit, such as tiny-imagenet-10; ILSVRC-2012 is decoded on the fly by parallel map calls instead).
    Unreadable images are found once, in the pass that computes the statistics (cached with them), and left out
    of both splits: `skipped_files` names them ({split: [(path, why)]}), and every run warns about them.
    """
    name = "imagenet_folder"

    def __init__(self, data_dir, input_size=paper.INPUT_SIZE, cache_dir=None, cache_decoded=False, train_limit=None,
                 **kwargs):
        super().__init__(**kwargs)
        root = pathlib.Path(data_dir)
        self.classes, train, val = list_image_folder(root)
        if train_limit and train_limit < len(train):   # spread over the sorted files, so every class keeps images
            train = [train[i] for i in np.linspace(0, len(train) - 1, train_limit).round().astype(int)]
        self.source = str(root)
        self.num_classes = len(self.classes)
        self.class_names = ilsvrc.class_names(self.classes)
        self.crop_size = input_size
        self.files = {"train": train, "eval": val}
        key = hashlib.sha256(f"{root.resolve()}:{len(train)}:{len(val)}".encode()).hexdigest()[:12]
        self.cache_dir = pathlib.Path(cache_dir or pathlib.Path.home() / ".cache" / "alexnet-replica") / key
        self.cache_decoded = cache_decoded
        self._arrays = {}
        self.stats, self.skipped_files = self._load_or_compute_stats()
        self._leave_out_skipped()

    def _count(self, split):
        return len(self.files[split])

    def _decoded(self, paths, labels, with_paths=False):
        """(image 256x256 uint8, label[, path]) of each readable file, in file order."""
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        ds = ds.map(lambda p, y: (decode_and_resize(p), y, p), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        ds = ds.ignore_errors(log_warning=True)
        return ds if with_paths else ds.map(lambda image, y, p: (image, y))

    def _decoded_arrays(self, split):
        """The whole split decoded at 256x256 in memory, in file order (cached)."""
        if split not in self._arrays:
            paths, labels = zip(*self.files[split])
            images, kept = [], []
            for image, label in self._decoded(list(paths), np.array(labels, np.int64)).batch(256):
                images.append(image.numpy())
                kept.append(label.numpy())
            self._arrays[split] = (np.concatenate(images), np.concatenate(kept))
        return self._arrays[split]

    def _gather(self, split, indices):
        if self.cache_decoded:
            images, labels = self._decoded_arrays(split)
            indices = indices[indices < len(labels)]   # a file that became unreadable after the scan is dropped
            return tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))
        paths = np.array([p for p, _ in self.files[split]])[indices]
        labels = np.array([y for _, y in self.files[split]], np.int64)[indices]
        return self._decoded(paths, labels)

    def _leave_out_skipped(self):
        """Drop the unreadable files from both splits and say which they are, the first few by name."""
        for split, skipped in self.skipped_files.items():
            if not skipped:
                continue
            bad = {path for path, _ in skipped}
            total = len(self.files[split])
            self.files[split] = [(p, y) for p, y in self.files[split] if p not in bad]
            names = ", ".join(pathlib.Path(p).name for p, _ in skipped[:3])
            logging.warning("%s: skipping %d unreadable image(s) of %d in %s: %s%s (all of them in the run folder's "
                            "skipped_files.txt)", self.source, len(skipped), total, split, names,
                            ", ..." if len(skipped) > 3 else "")
        if not self.files["train"] or not self.files["eval"]:
            empty = "train" if not self.files["train"] else "val"
            raise DataError(f"no image of {self.source}/{empty} could be decoded; check the files")

    def _unreadable(self, split, readable):
        return [(p, "could not be decoded") for p, _ in self.files[split] if p not in readable]

    def _load_or_compute_stats(self):
        """(ImageStats of the training set, {split: unreadable files}), cached in cache_dir."""
        path, skipped_path = self.cache_dir / "stats.npz", self.cache_dir / "skipped.json"
        if path.is_file() and skipped_path.is_file():
            skipped = {k: [tuple(f) for f in v] for k, v in json.loads(skipped_path.read_text()).items()}
            return load_stats(path), skipped
        sums, readable = StatsSums(), set()
        paths, labels = zip(*self.files["train"])
        for batch, _, names in self._decoded(list(paths), np.array(labels, np.int64), with_paths=True).batch(64):
            sums.add(batch.numpy())
            readable.update(n.decode() for n in names.numpy())
        if not sums.count:
            raise DataError(f"no image of {self.source}/train could be decoded; check the files")
        skipped = {"train": self._unreadable("train", readable), "eval": self._unreadable("eval", self._scan("eval"))}
        stats = sums.stats()
        save_stats(stats, path)
        tmp = self.cache_dir / "skipped.json.tmp"
        tmp.write_text(json.dumps(skipped))
        os.replace(tmp, skipped_path)
        return stats, skipped

    def _scan(self, split):
        """The paths of the split's files that decode."""
        paths = tf.data.Dataset.from_tensor_slices([p for p, _ in self.files[split]])
        ds = paths.map(lambda p: (tf.shape(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                               expand_animations=False)), p),
                       num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
        return {p.decode() for _, batch in ds.batch(256) for p in batch.numpy()}


class ImageShards(Photos):
    """ImageNet as TFRecord shards (replica.inputs.records): the official or TFDS layout, or the replica's prepared shards.

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
        self.cache_dir = pathlib.Path(cache_dir or pathlib.Path.home() / ".cache" / "alexnet-replica") / \
            records.cache_key(root, (len(train_files), len(val_files)))
        counts = manifest["counts"] if manifest else self._counted()
        self.counts = {"train": min(counts["train"], train_limit or counts["train"]), "eval": counts["eval"]}
        self.train_limit = train_limit
        self.stats = self._stats(root, manifest)
        self.skipped_files = {}

    def _counted(self):
        path = self.cache_dir / "counts.json"
        if path.is_file():
            return json.loads(path.read_text())
        counts = {split: records.count_records(shards.files) for split, shards in self.shards.items()}
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(counts))
        return counts

    def _stats(self, root, manifest):
        for path in ((root / records.STATS) if manifest else None, self.cache_dir / records.STATS):
            if path is not None and path.is_file():
                return load_stats(path)
        sums = StatsSums()
        for batch, _ in self._decoded(self._stream("train")).batch(64):
            sums.add(batch.numpy())
        stats = sums.stats()
        save_stats(stats, self.cache_dir / records.STATS)
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


def load_data(dataset, data_dir=None, input_size=None, pca_colour_augment=False, augment=True, cache_dir=None,
              cache_decoded=False, train_limit=None, eval_limit=None, validation_images=0):
    """The data set a run names: "cifar10" (data_dir None: the shipped slice; "download": Keras) or
    "imagenet_folder" (data_dir: train/ and val/ class folders; its val/ is the validation split, as the
    paper's ILSVRC-2012 numbers are)."""
    if dataset == "cifar10":
        return Cifar10(data_dir, train_limit=train_limit, eval_limit=eval_limit, crop_size=input_size or 32,
                       pca_colour_augment=pca_colour_augment, augment=augment, validation_images=validation_images)
    if validation_images:
        raise DataError("--validation_images holds out CIFAR-10 training images; an image folder's val/ is its "
                        "validation split")
    if dataset == "imagenet_folder":
        if not data_dir:
            raise DataError("--dataset=imagenet_folder needs --data_dir pointing at a folder with train/ and val/")
        shards = records.detect(data_dir)
        if shards:   # TFRecord shards: the official, TFDS or prepared layout
            return ImageShards(data_dir, *shards, input_size=input_size or paper.INPUT_SIZE, cache_dir=cache_dir,
                               train_limit=train_limit, pca_colour_augment=pca_colour_augment, augment=augment)
        return ImageFolder(data_dir, input_size=input_size or paper.INPUT_SIZE, cache_dir=cache_dir,
                           cache_decoded=cache_decoded, train_limit=train_limit,
                           pca_colour_augment=pca_colour_augment, augment=augment)
    raise DataError(f"unknown data set {dataset!r}; use cifar10 or imagenet_folder")


if __name__ == "__main__":   # python -m replica.inputs.input_pipeline SOURCE TARGET: cut the shipped CIFAR-10 slice
    import sys
    if len(sys.argv) != 3:
        sys.exit("usage: python -m replica.inputs.input_pipeline <cifar-10-batches-py folder> <target folder>")
    write_cifar10_slice(sys.argv[1], sys.argv[2])
