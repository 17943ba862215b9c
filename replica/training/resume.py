"""What a checkpoint holds besides the weights, and what a loss blow-up leaves for the next run (README,
Checkpoints): after a NaN or infinite loss, `checkpoints/diverged.json` names the learning rate that diverged and
the checkpoint from before the blow-up; the run resumes from that one only at a lower learning rate.
"""

import tensorflow as tf

from replica.errors import UserError
from replica.training import checkpoints
from replica.training.recipe import recipe_json
from replica.training.runs import read_json, write_json_atomically

DIVERGED = "diverged.json"


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite; the checkpoint from before the blow-up is kept and named."""


class RunState:
    """Where the run is, what the schedule has seen, and the recipe the run was following (so a resumed run knows
    what changed, atomically with the weights)."""

    def __init__(self, config):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        self.learning_rate = tf.Variable(config.learning_rate, dtype=tf.float32, trainable=False, name="learning_rate")
        self.best_error = tf.Variable(1.0, dtype=tf.float32, trainable=False, name="best_error")
        self.epochs_without_improvement = tf.Variable(0, dtype=tf.int64, trainable=False, name="stale_epochs")
        self.drops = tf.Variable(0, dtype=tf.int64, trainable=False, name="drops")
        self.finished = tf.Variable(False, trainable=False, name="finished")
        self.recipe = tf.Variable(recipe_json(config), dtype=tf.string, trainable=False, name="recipe")

    def trackables(self):
        return {k: v for k, v in vars(self).items() if isinstance(v, tf.Variable)}


def read_diverged(checkpoint_dir, learning_rate, is_chief):
    """After a loss blow-up: refuse to resume at the learning rate that diverged; at a lower one, set aside the
    checkpoints after the last one from before the blow-up, so that one is resumed. Returns diverged.json's
    record, or None when the run never diverged."""
    path = checkpoint_dir / DIVERGED
    if not path.is_file():
        return None
    diverged = read_json(path, "it names the checkpoint from before the loss blow-up; delete it to resume from the "
                               "newest checkpoint instead")
    good = diverged["resume_from"]
    if learning_rate >= diverged["learning_rate"]:
        where = f"ckpt-{good}" if good is not None else "the start"
        raise NonFiniteLoss(f"this run diverged at step {diverged['step']} with --learning_rate="
                            f"{diverged['learning_rate']:g}: rerun with a lower --learning_rate to resume from "
                            f"{where}")
    if is_chief:
        for prefix in checkpoints.complete(checkpoint_dir):
            if good is None or checkpoints.step_of(prefix) > good:
                checkpoints.set_aside(prefix, "diverged")
        path.unlink()   # done: the folder's newest checkpoint is now the one from before the blow-up
    return diverged


def diverged(checkpoint_dir, what, step, learning_rate, good, is_chief):
    """Record the blow-up in diverged.json (the chief) and return the NonFiniteLoss that names `good`, the
    checkpoint record from before it (or None), which the next run resumes from at a lower learning rate."""
    if is_chief:
        write_json_atomically(checkpoint_dir / DIVERGED, {"step": step, "learning_rate": learning_rate,
                                                          "resume_from": good["step"] if good else None})
    if good:
        advice = (f"checkpoint ckpt-{good['step']} (mean loss {good['loss']:.3f}) precedes the blow-up and is "
                  f"kept: rerun with --learning_rate below {learning_rate:g} to resume from it")
    else:
        advice = f"no checkpoint precedes the blow-up: rerun with --learning_rate below {learning_rate:g} to start again"
    return NonFiniteLoss(f"{what}; {advice}")
