"""What a photo data set keeps per data folder under --cache_dir (default ~/.cache/alexnet-replica): the mean image
and PCA statistics of its training images (paper 2, 4.1), its example counts, its unreadable files. Read back when
sound; computed again when absent or damaged; written whole or not at all, and not at all on a full disk (`keep`)."""
import hashlib
import json
import pathlib
import zipfile

from absl import logging

from replica import files
from replica.inputs.transforms import save_stats

DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)   # what reading a damaged .npz or .json raises


def folder(cache_dir, data_dir, counts):
    """The cache folder under `cache_dir` of one data folder read with `counts` (its training and validation
    files or shards: another subset of the same folder has statistics of its own)."""
    key = hashlib.sha256(f"{pathlib.Path(data_dir).resolve()}:{tuple(counts)}".encode()).hexdigest()[:12]
    return pathlib.Path(cache_dir or pathlib.Path.home() / ".cache" / "alexnet-replica") / key


def read(path, load):
    """`load(path)`, or None when the file is absent or damaged (a warning: the caller computes it again)."""
    if not path.is_file():
        return None
    try:
        return load(path)
    except DAMAGED as e:
        logging.warning("%s is damaged (%s); computing it again", path, e)
        return None


def read_json(path):
    return read(path, lambda p: json.loads(p.read_text()))


def keep(path, save):
    """`save(temporary path)`, renamed to `path` when whole (replica.files.write_whole). A failed write (a full disk,
    a read-only --cache_dir) is a warning, and what was computed is used all the same: hours of statistics over
    ILSVRC are not thrown away for want of a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_whole(path, save)
    except OSError as e:
        logging.warning("not cached: could not write %s (%s)", path, files.failure_reason(e))


def keep_json(path, obj):
    keep(path, lambda tmp: tmp.write_text(json.dumps(obj)))


def keep_stats(path, stats):
    keep(path, lambda tmp: save_stats(stats, tmp))
