"""CIFAR-10 from the canonical `cifar-10-batches-py` pickles (the shipped slice by default), held in memory.

  python -m replica.inputs.cifar10 <cifar-10-batches-py folder> <target folder>   # cut the shipped slice
"""
import pathlib
import pickle

import numpy as np
import tensorflow as tf

from replica.inputs.data_set import DataError, ImageData
from replica.inputs.transforms import image_stats

PACKAGE_DATA = pathlib.Path(__file__).resolve().parents[1] / "data"

CIFAR10_SLICE = PACKAGE_DATA / "cifar-10-slice"

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"   # the archive's checksum, as the CIFAR-10 page gives it

CIFAR_PAD = 4                      # CIFAR-10 crops: 32x32 out of the mean-subtracted image padded to 40x40


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
    folder = cifar10_folder(data_dir or CIFAR10_SLICE)
    train_files = sorted(folder.glob("data_batch_*"))
    train = [read_cifar_batch(p) for p in train_files]
    test_images, test_labels = read_cifar_batch(folder / "test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), test_images, test_labels)


def cifar10_class_names(data_dir=None):
    """The ten class names of batches.meta ("airplane", ...), in label order (the shipped slice's file when the
    folder has none: the names are CIFAR-10's, whichever copy)."""
    path = pathlib.Path(data_dir or CIFAR10_SLICE) / "batches.meta"
    path = path if path.is_file() else CIFAR10_SLICE / "batches.meta"
    try:
        with open(path, "rb") as f:
            return [name.decode() for name in pickle.load(f, encoding="bytes")[b"label_names"]]
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{path} is not a readable batches.meta ({e}); re-extract cifar-10-python.tar.gz") from None


def download_cifar10():
    """Download and extract CIFAR-10 through Keras (used only when --data_dir=download); returns the folder."""
    import keras
    try:
        path = keras.utils.get_file("cifar-10-python.tar.gz", CIFAR10_URL, file_hash=CIFAR10_MD5, extract=True)
    except Exception as e:   # keras raises a bare Exception for a failed fetch, ValueError for a wrong checksum
        raise DataError(f"could not download CIFAR-10 from {CIFAR10_URL} ({str(e).splitlines()[0][:160]}); fetch "
                        "cifar-10-python.tar.gz yourself, extract it and pass --data_dir=<its cifar-10-batches-py>"
                        ) from None
    candidates = list(pathlib.Path(path).parent.rglob("cifar-10-batches-py"))
    if not candidates:
        raise DataError(f"the download at {path} holds no cifar-10-batches-py folder")
    return str(candidates[0])


def cifar10_folder(folder):
    """`folder` as a path when it holds CIFAR-10's python batches (data_batch_* and test_batch), else a DataError."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {folder} does not exist; point --data_dir at a cifar-10-batches-py folder")
    if not any(folder.glob("data_batch_*")) or not (folder / "test_batch").is_file():
        raise DataError(f"{folder} has no data_batch_* / test_batch files; point --data_dir at a "
                        "cifar-10-batches-py folder")
    return folder


def write_cifar10_slice(source_dir, target_dir, train=2000, test=500, per_file=1000):
    """Cut the shipped slice: the first `train` images of data_batch_1 and the first `test` of test_batch."""
    source_dir = cifar10_folder(source_dir)
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


if __name__ == "__main__":   # python -m replica.inputs.cifar10 SOURCE TARGET: cut the shipped CIFAR-10 slice
    import sys
    from replica.errors import UserError, exits_2_on_user_error

    def main(argv):
        if len(argv) != 3:
            raise UserError("usage: python -m replica.inputs.cifar10 <cifar-10-batches-py folder> <target folder>")
        write_cifar10_slice(argv[1], argv[2])
    sys.exit(exits_2_on_user_error(main)(sys.argv))
