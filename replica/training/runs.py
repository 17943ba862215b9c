"""A run folder: its run_config.json (the network and the data it was started with), its lock, its checkpoints
(replica.training.checkpoints), and the trained model they hold.

    run_dir/run_config.json    the run-defining settings; a resumed run must use the same ones
    run_dir/lock               held by the process that trains in the folder (the chief of a multi-worker run)
    run_dir/checkpoints/       ckpt-<step>.index/.data-*, damaged/ and diverged/ for checkpoints set aside
    run_dir/history.json       the training curve, the checkpoints' losses, the changes made on resuming
    run_dir/results.json       the final evaluation; a finished run only reports it when rerun
    run_dir/skipped_files.txt  every image file the data pipeline could not read
"""
import fcntl
import json
import os
import pathlib

import tensorflow as tf

from replica import files
from replica.training import checkpoints
from replica.choices import towers_value
from replica.net import model as model_lib
from replica.errors import UserError

# Settings that define the network and the data of a run: a resumed run must use the ones it started with.
RUN_DEFINING = ("towers", "input_size", "num_classes", "lrn", "pooling", "activation", "dropout", "positive_bias",
                "drop_layer", "precision", "dataset", "data_dir", "train_limit", "validation_images", "batch_size",
                "seed")


class RunError(UserError, ValueError):
    """A path that is not a usable run folder or checkpoint (the message says what to do)."""


def drop_layer_value(text):
    """--drop_layer's "none" (or a run_config.json from before the flag) is build_model's None."""
    return None if text in (None, "none") else text


def build_from_config(config, devices=None):
    """The network a run_config.json describes, on `devices`."""
    return model_lib.build_model(towers_value(config["towers"]), num_classes=config["num_classes"], devices=devices,
                                 input_size=config["input_size"], lrn=config["lrn"], pooling=config["pooling"],
                                 activation=config["activation"], dropout_rate=config["dropout"],
                                 positive_bias=config["positive_bias"],
                                 drop_layer=drop_layer_value(config.get("drop_layer")),
                                 precision=config.get("precision", "float32"))


_held_locks = {}


def lock(run_dir):
    """Hold `run_dir/lock` for the rest of this process, or raise RunError when another process holds it. The
    kernel releases the lock when its process dies, so a killed run never leaves the folder locked."""
    holder = try_lock(run_dir)
    if holder:
        raise RunError(f"{run_dir} is in use by {holder}; wait for it to finish or pass another --run_dir")


def try_lock(run_dir):
    """`lock`, but returning who holds the folder ("process 123 on host") instead of raising; None once held."""
    run_dir = pathlib.Path(run_dir)
    key = str(run_dir.resolve())
    if key in _held_locks:
        return None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # read-write, created if missing, not truncated (the holder's name stays until the lock is won) and not in
        # append mode, where every write would land after the previous holder's name instead of over it
        handle = open(os.open(run_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)
    except OSError as e:
        raise RunError(f"cannot write the run folder {run_dir} ({e.strerror or e}); choose a folder you can write "
                       "to") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "another process"
        handle.close()
        return holder
    try:
        handle.seek(0)
        handle.write(f"process {os.getpid()} on {os.uname().nodename}".encode())
        handle.truncate()   # at the end of what was written
    except OSError as e:   # a full disk: nothing of the run is written yet
        handle.close()
        raise RunError(f"cannot write the run folder {run_dir} ({e.strerror or e}); free space there or choose "
                       "another --run_dir") from None
    _held_locks[key] = handle
    return None


def release(run_dir):
    handle = _held_locks.pop(str(pathlib.Path(run_dir).resolve()), None)
    if handle:
        handle.close()


def check_resumable(run_dir, config, resume=True, defaults=None):
    """Refuse (RunError) a run folder that holds a checkpoint of other run-defining settings, or any checkpoint
    when `resume` is False. Writes nothing."""
    run_dir = pathlib.Path(run_dir)
    saved_file = run_dir / "run_config.json"
    has_checkpoint = bool(checkpoints.complete(run_dir / "checkpoints"))
    if has_checkpoint and not resume:
        raise RunError(f"{run_dir} already holds a checkpoint; pass another --run_dir, or drop --noresume to "
                       "resume it")
    if saved_file.is_file() and has_checkpoint:
        saved = read_config(run_dir)
        defaults = defaults or {}
        # a setting added after the run started counts as its default
        changed = [f"--{k}={config[k]} (started with {saved.get(k, defaults.get(k))})" for k in config
                   if saved.get(k, defaults.get(k)) != config[k]]
        if changed:
            raise RunError(f"{run_dir} was started with other flags: {', '.join(changed)}; use another --run_dir")


def write_config(run_dir, config):
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(run_dir / "run_config.json", config)


def read_config(run_dir):
    return read_json(pathlib.Path(run_dir) / "run_config.json", "point at a run folder made by run_experiment.py")


def read_json(path, remedy):
    """A run file's JSON (replica.files.read_json); a damaged one is a RunError saying what to do."""
    return files.read_json(path, RunError, remedy)


def write_json_atomically(path, obj):
    """Write `obj` as JSON to `path` whole or not at all (write_atomically)."""
    write_atomically(path, json.dumps(obj, indent=2, default=str))


def write_atomically(path, text):
    """Write `text` to `path` whole or not at all; a failed write (a full disk) leaves the old file and raises
    CheckpointWriteError saying what to do."""
    files.write_whole_or_raise(checkpoints.CheckpointWriteError, path, lambda tmp: tmp.write_text(text),
                               "free space and rerun the same command to resume")


def find_run(path):
    """(run folder, checkpoint prefix, run config) for a run folder or a checkpoint path inside one."""
    path = pathlib.Path(path)
    if path.is_dir():
        run_dir = path
    elif tf.io.gfile.exists(str(path) + ".index"):
        run_dir = path.parent.parent
    else:
        raise RunError(f"{path} does not exist: pass a run folder or a checkpoint path (run/checkpoints/ckpt-N)")
    if not (run_dir / "run_config.json").is_file():
        raise RunError(f"{run_dir} has no run_config.json: point at a run folder made by run_experiment.py")
    found = checkpoints.complete(run_dir / "checkpoints")
    checkpoint = str(path) if not path.is_dir() else (found[-1] if found else None)
    if not checkpoint:
        raise RunError(f"{run_dir} holds no checkpoint yet: train it first (run_experiment.py --run_dir={run_dir})")
    return run_dir, checkpoint, read_config(run_dir)


def load_trained(path, devices=None):
    """(model with the checkpoint's weights, run config) of a run folder or checkpoint path. A checkpoint that
    does not restore every variable of the model its run_config.json describes is a RunError; in a run folder
    a damaged newest checkpoint gives way to the newest sound one."""
    run_dir, checkpoint, config = find_run(path)
    model = build_from_config(config, devices)
    restorer = tf.train.Checkpoint(model=model)
    try:
        if pathlib.Path(path).is_dir():
            checkpoints.restore_newest(restorer, run_dir / "checkpoints")
        else:
            why = checkpoints.damage(checkpoint) or checkpoints.mismatch(restorer, checkpoint)
            if why:
                raise checkpoints.CheckpointMismatch(f"{checkpoint}: {why}")
    except checkpoints.CheckpointMismatch as e:
        raise RunError(f"the checkpoint does not restore the network {run_dir}/run_config.json describes: {e}; "
                       "point at the run folder the checkpoint came from") from None
    return model, config
