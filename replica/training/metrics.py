"""What a run records as it trains: the progress line in the log, history.json's training curve, and the
TensorBoard scalars and conv1 kernel images (paper Fig. 3) under run_dir/tensorboard."""
import contextlib

import numpy as np
import tensorflow as tf
from absl import logging

from replica import files
from replica.net import kernels
from replica.training.checkpoints import CheckpointWriteError


def empty_history():
    return {"train": [], "epochs": [], "checkpoints": [], "changes": []}


def history_up_to(saved, step, epoch):
    """history.json as it was when the checkpoint at `step` (in `epoch`) was written: it is written before each
    checkpoint, so it holds at least what the checkpoint saw."""
    return {"train": [h for h in saved["train"] if h["step"] <= step],
            "epochs": [h for h in saved["epochs"] if h["epoch"] < epoch],
            "checkpoints": [h for h in saved.get("checkpoints", []) if h["step"] <= step],
            "changes": [h for h in saved.get("changes", []) if h["step"] <= step]}


class Metrics:
    """The log, history and TensorBoard of one run; only the chief's writer writes."""

    def __init__(self, history=None):
        self.history = history or empty_history()
        self.writer = None
        self.folder = None

    def open_writer(self, run_dir, is_chief):
        self.folder = run_dir / "tensorboard"
        with self.writing():
            self.writer = (tf.summary.create_file_writer(str(self.folder)) if is_chief else
                           tf.summary.create_noop_writer())

    @contextlib.contextmanager
    def writing(self, step=None):
        """TensorBoard's writer as the default one at `step`; a write that fails (a full disk) is a
        CheckpointWriteError saying what to do: what was trained since the last checkpoint is lost, nothing before."""
        try:
            if step is None:
                yield
            else:
                with self.writer.as_default(step=step):
                    yield
        except tf.errors.OpError as e:
            raise CheckpointWriteError(f"could not write TensorBoard's events in {self.folder} "
                                       f"({files.failure_reason(e)}); free space and rerun the same command to "
                                       "resume") from None

    def train_point(self, step, epoch, loss, top1, top5, learning_rate, images_per_second):
        logging.info("step %d  epoch %d  loss %.4f  top-1 err %.3f  top-5 err %.3f  lr %.5f  %.1f images/s",
                     step, epoch + 1, loss, top1, top5, learning_rate, images_per_second)
        self.history["train"].append({"step": step, "epoch": epoch, "loss": loss, "top1_error": top1,
                                      "top5_error": top5, "learning_rate": learning_rate,
                                      "images_per_second": images_per_second})
        with self.writing(step):
            tf.summary.scalar("train/loss", loss)
            tf.summary.scalar("train/top1_error", top1)
            tf.summary.scalar("train/top5_error", top5)
            tf.summary.scalar("learning_rate", learning_rate)
            tf.summary.scalar("images_per_second", images_per_second)

    def epoch_point(self, epoch, step, learning_rate, val, split, model):
        """The epoch's validation error beside its mean training loss and error, and tower i's conv1 kernels."""
        recent = [h for h in self.history["train"] if h["epoch"] == epoch]
        self.history["epochs"].append({
            "epoch": epoch, "step": step, "learning_rate": learning_rate,
            "val_top1_error": val["top1_error"], "val_top5_error": val["top5_error"], "val_split": split,
            "train_loss": float(np.mean([h["loss"] for h in recent])) if recent else None,
            "train_top1_error": float(np.mean([h["top1_error"] for h in recent])) if recent else None})
        logging.info("epoch %d done: validation top-1 err %.4f  top-5 err %.4f", epoch + 1, val["top1_error"],
                     val["top5_error"])
        with self.writing(step):
            tf.summary.scalar("val/top1_error", val["top1_error"])
            tf.summary.scalar("val/top5_error", val["top5_error"])
            for t, kernel in enumerate(kernels.tower_conv1_kernels(model)):
                tf.summary.image(f"conv1_kernels/tower_{t}", kernels.kernel_grid(kernel)[None])
