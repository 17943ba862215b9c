"""A run folder (made by run_experiment.py): its run_config.json, its checkpoints, the model they hold."""
import json
import pathlib

import tensorflow as tf

from replica import model as model_lib


class RunError(ValueError):
    """A path that is not a usable run folder or checkpoint (the message says what to do)."""


def towers_value(text):
    return int(text) if str(text) in ("1", "2") else text


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


def find_run(path):
    """(run folder, checkpoint prefix, run config) for a run folder or a checkpoint path inside one."""
    path = pathlib.Path(path)
    run_dir = path if path.is_dir() else path.parent.parent
    config_file = run_dir / "run_config.json"
    if not config_file.is_file():
        raise RunError(f"{run_dir} has no run_config.json: point at a run folder made by run_experiment.py")
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints")) if path.is_dir() else str(path)
    if not checkpoint or not tf.io.gfile.exists(checkpoint + ".index"):
        raise RunError(f"no checkpoint found at {path}")
    return run_dir, checkpoint, json.loads(config_file.read_text())


def load_trained(path, devices=None):
    """(model with the checkpoint's weights, run config) of a run folder or checkpoint path."""
    _, checkpoint, config = find_run(path)
    model = build_from_config(config, devices)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model, config
