"""A run's checkpoint folder, trusted only as far as it checks out (README, Checkpoints).

- Checkpoints are found by their own files (`ckpt-<step>.index`), not by TensorFlow's `checkpoint` index file, so
  a garbled index loses nothing; the index is rewritten after every save for tools that read it.
- A checkpoint is used only when every tensor in it reads back (TensorFlow checks each tensor's checksum) and it
  restores every variable of the objects given. A damaged newest checkpoint is moved to `damaged/`, said in one
  line, and the next older one is used; none is ever overwritten.
- A write that fails (a full disk) removes its partial files and leaves the newest complete checkpoint the
  newest; partial `_temp` files of killed writes are removed when a run starts.
- `last_before_blow_up` picks the checkpoint to fall back to after the loss diverged; `prune` keeps it.
"""
import errno
import math
import pathlib
import re
import shutil

import numpy as np
import tensorflow as tf
from absl import logging

from replica.errors import UserError

NAME = re.compile(r"^ckpt-(\d+)\.index$")
BLOW_UP_RISE = 1.5   # ours: a checkpoint whose mean loss is 1.5x the lowest before it is past a blow-up's start


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (a full disk); the previous one is still the newest."""


class DamagedCheckpoints(UserError):
    """No checkpoint of the folder reads back whole."""


class CheckpointMismatch(UserError):
    """A checkpoint that does not restore every variable of the network it is restored into."""


def prefix_for(directory, step):
    return str(pathlib.Path(directory) / f"ckpt-{step}")


def step_of(prefix):
    return int(str(prefix).rsplit("-", 1)[1])


def complete(directory):
    """The prefixes of the checkpoints in `directory` that have an index file, oldest first."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    steps = sorted(int(m.group(1)) for m in (NAME.match(p.name) for p in directory.iterdir()) if m)
    return [prefix_for(directory, s) for s in steps]


def files_of(prefix):
    prefix = pathlib.Path(prefix)
    return [p for p in prefix.parent.glob(prefix.name + ".*")]


def damage(prefix):
    """None when every tensor of the checkpoint at `prefix` reads back (TensorFlow checks each one's checksum);
    else what is wrong, in a few words."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, OSError, IndexError, RuntimeError) as e:   # IndexError: a short read
        return _short(e)
    return None


def mismatch(checkpoint, prefix):
    """Restore `prefix` into `checkpoint` (a tf.train.Checkpoint); None when it restored every variable of it,
    else which did not (a checkpoint of another network)."""
    try:
        checkpoint.restore(prefix).assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        return _short(e)
    return None


def _short(error):
    return " ".join(str(error).split())[:240] or type(error).__name__


def restore_newest(checkpoint, directory, writer=True):
    """Restore the newest sound checkpoint of `directory` into `checkpoint`; returns its prefix, or None when the
    folder holds none. Damaged newer ones are named in one warning and, by the folder's `writer` (the chief of a
    multi-worker run), moved to `damaged/`; a checkpoint of another network is a CheckpointMismatch, never a
    partial restore."""
    damaged = []
    for prefix in reversed(complete(directory)):
        why = damage(prefix)
        if why is not None:
            damaged.append((prefix, why))
            continue
        why = mismatch(checkpoint, prefix)
        if why is not None:
            raise CheckpointMismatch(f"{prefix} does not hold this network ({why})")
        for bad, reason in damaged:
            if writer:
                set_aside(bad, "damaged")
            logging.warning("checkpoint %s is damaged (%s): moved to %s; resuming from %s", bad, reason,
                            pathlib.Path(directory) / "damaged", prefix)
        if writer:
            write_index(directory)
        return prefix
    if damaged:
        bad, reason = damaged[0]
        raise DamagedCheckpoints(f"no checkpoint in {directory} restores: the newest, {bad}, is damaged ({reason}); "
                                 "pass another --run_dir to start over (nothing was changed)")
    return None


def set_aside(prefix, folder):
    """Move a checkpoint's files into `folder` beside it (never overwriting anything already there)."""
    target = pathlib.Path(prefix).parent / folder
    target.mkdir(exist_ok=True)
    for f in files_of(prefix):
        destination, k = target / f.name, 1
        while destination.exists():
            destination, k = target / f"{f.name}.{k}", k + 1
        f.rename(destination)


def remove_partial_writes(directory):
    """Delete the `*_temp*` files and folders that a killed or failed write leaves behind."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    partial = [p for p in directory.iterdir() if "_temp" in p.name]
    for p in partial:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    if partial:
        logging.info("removed the partial checkpoint files %s", ", ".join(p.name for p in partial))
    return partial


def write_files(checkpoint, prefix):
    """The one place a checkpoint's files are written (tests inject a full disk or a kill here). The save
    counter is created first, so that the file holds every object `mismatch` expects."""
    checkpoint.save_counter  # noqa: B018  (creates it)
    checkpoint.write(prefix)


def write(checkpoint, directory, step, needed_bytes):
    """Write checkpoint `ckpt-<step>`; a failure removes its partial files and raises CheckpointWriteError."""
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    prefix = prefix_for(directory, step)
    try:
        write_files(checkpoint, prefix)
        write_index(directory)
    except (OSError, tf.errors.OpError) as e:
        remove_partial_writes(directory)
        for f in files_of(prefix):
            f.unlink()
        write_index(directory, failed_ok=True)
        free = shutil.disk_usage(directory).free
        cause = "the disk is full" if _is_disk_full(e) else " ".join(str(e).split())[:160]
        raise CheckpointWriteError(
            f"could not write checkpoint {prefix} ({cause}; {free / 2**20:,.0f} MB free, a checkpoint needs "
            f"{needed_bytes / 2**20:,.0f} MB); free space and rerun the same command: it resumes from "
            f"{(complete(directory) or ['the start'])[-1]}") from None
    return prefix


def _is_disk_full(error):
    return getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error) or \
        isinstance(error, tf.errors.ResourceExhaustedError)


def write_index(directory, failed_ok=False):
    """Rewrite TensorFlow's `checkpoint` index file from the checkpoints on disk."""
    prefixes = complete(directory)
    if not prefixes:
        return
    try:
        tf.compat.v1.train.update_checkpoint_state(str(directory), prefixes[-1], prefixes)
    except (OSError, tf.errors.OpError):
        if not failed_ok:
            raise


def prune(directory, keep_steps):
    """Delete every checkpoint whose step is not in `keep_steps` (and rewrite the index if any went)."""
    dropped = [prefix for prefix in complete(directory) if step_of(prefix) not in keep_steps]
    for prefix in dropped:
        for f in files_of(prefix):
            f.unlink()
    if dropped:
        write_index(directory)


def last_before_blow_up(records, num_classes):
    """The last checkpoint record ({"step", "loss"}, oldest first) whose mean loss was not rising sharply: finite
    and at most BLOW_UP_RISE times the lowest of chance's loss, ln(num_classes), and the records before it."""
    lowest, chosen = math.log(max(num_classes, 2)), None
    for record in records:
        loss = record.get("loss")
        if loss is None or not np.isfinite(loss) or loss > BLOW_UP_RISE * lowest:
            continue
        chosen, lowest = record, min(lowest, loss)
    return chosen
