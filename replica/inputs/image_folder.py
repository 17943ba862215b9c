"""ImageNet as a tree of image files: train/<class>/*.JPEG with val/<class>/*.JPEG, or a flat val/ with its label
file as ILSVRC-2012 is distributed (replica.inputs.ilsvrc), decoded in parallel, optionally cached decoded."""
import pathlib

import numpy as np
import tensorflow as tf
from absl import logging

from replica import paper
from replica.inputs import cache, ilsvrc
from replica.inputs.data_set import DataError
from replica.inputs.photos import Photos, decode_and_resize, is_image_file
from replica.inputs.transforms import StatsSums, load_stats


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
        self.cache_dir = cache.folder(cache_dir, root, (len(train), len(val)))
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
        stats, skipped = cache.read(path, load_stats), cache.read_json(skipped_path)
        if stats is not None and skipped is not None:
            return stats, {split: [tuple(f) for f in files] for split, files in skipped.items()}
        sums, readable = StatsSums(), set()
        paths, labels = zip(*self.files["train"])
        for batch, _, names in self._decoded(list(paths), np.array(labels, np.int64), with_paths=True).batch(64):
            sums.add(batch.numpy())
            readable.update(n.decode() for n in names.numpy())
        if not sums.count:
            raise DataError(f"no image of {self.source}/train could be decoded; check the files")
        skipped = {"train": self._unreadable("train", readable), "eval": self._unreadable("eval", self._scan("eval"))}
        stats = sums.stats()
        cache.keep_stats(path, stats)
        cache.keep_json(skipped_path, skipped)
        return stats, skipped

    def _scan(self, split):
        """The paths of the split's files that decode."""
        paths = tf.data.Dataset.from_tensor_slices([p for p, _ in self.files[split]])
        ds = paths.map(lambda p: (tf.shape(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                               expand_animations=False)), p),
                       num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
        return {p.decode() for _, batch in ds.batch(256) for p in batch.numpy()}
