"""Training with the paper's recipe (PAPER.md 3, paper 5): SGD with momentum 0.9 and weight decay 0.0005
coupled through the momentum, batch 128, learning rate 0.01 divided by 10 when the validation error stops
improving (three times), checkpoints that resume exactly, TensorBoard logs and a results.json.
"""
import dataclasses
import json
import pathlib
import signal
import threading
import time

import numpy as np
import tensorflow as tf
from absl import logging

from replica.training import checkpoints, runs, schedule
from replica.inputs import input_pipeline
from replica.net import kernels, precision
from replica import paper
from replica.training import evaluate as evaluate_lib
from replica.errors import UserError
from replica.training.optimizer import PaperSGD  # noqa: F401  (the Trainer's optimizer; also replica.training.train.PaperSGD)
from replica.training.runs import write_json_atomically


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite; the checkpoint from before the blow-up is kept and named."""


class Interrupted(UserError):
    """Ctrl-C or SIGTERM: the run saved a checkpoint at the step it had reached and stopped."""


class RecipeChanged(UserError):
    """A resumed run was given a recipe setting that cannot change mid-run."""


# What resuming with a changed TrainConfig field does (README, Checkpoints). These would make the run a different
# optimisation from its first step, so they are refused; every other field applies from the step the run
# resumes at, recorded with that step in history.json's "changes" (a new learning_rate rescales the current
# one: learning_rate / lr_drop_factor ** drops so far).
FIXED_ON_RESUME = ("batch_size", "momentum", "weight_decay", "decay_biases", "lr_drop_factor", "seed")


@dataclasses.dataclass
class TrainConfig:
    """Every constant of the recipe; the defaults are the paper's (PAPER.md 3) unless marked ours."""
    batch_size: int = paper.BATCH_SIZE
    learning_rate: float = paper.LEARNING_RATE
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    decay_biases: bool = False          # ours: cuda-convnet's layer files put no decay on biases
    epochs: int = paper.EPOCHS
    lr_drop_factor: float = paper.LR_DROP_FACTOR
    lr_drops: int = paper.LR_DROPS
    lr_patience: int = 2                # ours: epochs without improvement before a drop (the paper gives none)
    lr_drop_epochs: tuple = ()          # ours: a fixed schedule instead, dropping after these epochs (1-based)
    seed: int = 0
    max_steps: int = 0                  # ours: stop after this many steps in all (0: no limit)
    checkpoint_every: int = 500         # steps; a checkpoint is also written at each epoch's end
    keep_checkpoints: int = 3
    log_every: int = 20                 # steps between progress lines and TensorBoard points
    eval_batch_size: int = 128
    eval_limit: int = 0                 # ours: evaluate on at most this many images each epoch (0: all)
    final_ten_crop: bool = True


def set_determinism(seed, deterministic):
    """Seed Python, NumPy and TensorFlow; with `deterministic`, ask TensorFlow for deterministic kernels too."""
    import keras
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def softmax_cross_entropy(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                                         logits=logits))


def make_train_step(model, optimizer, seed=0, grad_reducer=None, jit_compile=False, loss_scale=None):
    """A compiled step: (images, labels, step, learning_rate) -> (loss, top-1 err, top-5 err, applied).

    The update is skipped (applied False) when the loss or the gradients are not finite.
    grad_reducer: None, or (grads, loss) -> (grads, loss) averaged across workers.
    loss_scale: None, or a replica.net.precision.LossScale (float16 maps): the gradients are taken of the scaled loss
      and unscaled; a step whose gradients overflow is skipped and adjusts the scale.
    """
    variables = model.trainable_variables

    @tf.function(jit_compile=jit_compile)
    def train_step(images, labels, step, learning_rate):
        dropout_seed = tf.stack([tf.constant(seed, tf.int64), step])
        logits = model(images, training=True, dropout_seed=dropout_seed)
        with model.on_tower(0):   # fc8 and the loss sit on tower 0's device
            loss = softmax_cross_entropy(logits, labels)
            top1, top5 = evaluate_lib.batch_errors(logits, labels)
            scaled = loss if loss_scale is None else loss * loss_scale.scale
        # tf.gradients puts each gradient op on its forward op's device: tower i's backward stays on device i
        grads = tf.gradients(scaled, variables)
        if loss_scale is not None:
            grads = [g / loss_scale.scale for g in grads]
        if grad_reducer is not None:
            grads, loss = grad_reducer(grads, loss)
        grads_finite = tf.math.is_finite(tf.linalg.global_norm(grads))
        finite = tf.math.is_finite(loss) & grads_finite
        if loss_scale is not None:
            loss_scale.update(grads_finite)

        def update():
            optimizer.apply(grads, learning_rate)
            return tf.constant(True)

        applied = tf.cond(finite, update, lambda: tf.constant(False))
        batch = tf.cast(tf.shape(labels)[0], tf.float32)
        return loss, top1 / batch, top5 / batch, applied

    return train_step


class RunState:
    """What a checkpoint holds besides the weights: where the run is, what the schedule has seen, and the recipe
    the run was following (so a resumed run knows what changed, atomically with the weights)."""

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


def recipe_json(config):
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


class Trainer:
    """Trains `model` on `data` (an `input_pipeline.ImageData`) in `run_dir`, resuming from its checkpoint.

    workers: None, or a `replica.training.distributed.Workers`: the gradients are averaged across the workers, each
      worker trains on its share of every global batch, and only the chief writes.
    """

    def __init__(self, model, data, run_dir, config=TrainConfig(), workers=None, run_info=None):
        self.model, self.data, self.config = model, data, config
        self.run_dir = pathlib.Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.workers = workers
        self.is_chief = workers.is_chief if workers else True
        self.shard = (workers.index, workers.count) if workers else (0, 1)
        model.batch_shard = self.shard
        self.run_info = dict(run_info or {})
        self.optimizer = PaperSGD(model.trainable_variables, config.momentum, config.weight_decay,
                                  config.decay_biases)
        self.state = RunState(config)
        self.precision = getattr(model, "precision", "float32")
        self.loss_scale = precision.LossScale() if self.precision == "mixed_float16" else None
        self.checkpoint = tf.train.Checkpoint(model=model, velocities=self.optimizer.velocities,
                                              **self.state.trackables(),
                                              **(self.loss_scale.trackables() if self.loss_scale else {}))
        self.history = {"train": [], "epochs": [], "checkpoints": [], "changes": []}
        self._losses_since_save = []
        self._restored = False
        self._full_evaluation = None   # (step, the validation over the whole split at that step)
        self.predict = evaluate_lib.make_predict(model)
        self.writer = None
        step = make_train_step(model, self.optimizer, config.seed, workers.all_reduce_mean if workers else None,
                               loss_scale=self.loss_scale)
        self._train_step = workers.wrap(step) if workers else step

    # --- checkpoints ----------------------------------------------------------------------------------------
    def restore(self):
        """Restore the newest sound checkpoint of the run folder, if any (replica.training.checkpoints); apply what the
        caller's recipe changes (FIXED_ON_RESUME refused). Returns whether a checkpoint was restored."""
        self._restored = True
        if self.is_chief:
            checkpoints.remove_partial_writes(self.checkpoint_dir)
        diverged = self._read_diverged()
        latest = checkpoints.restore_newest(self.checkpoint, self.checkpoint_dir, writer=self.is_chief)
        if not latest:
            return False
        step, epoch = int(self.state.step.numpy()), int(self.state.epoch.numpy())
        history_file = self.run_dir / "history.json"
        if history_file.is_file():   # written before each checkpoint: it holds at least what the checkpoint saw
            saved = json.loads(history_file.read_text())
            self.history = {"train": [h for h in saved["train"] if h["step"] <= step],
                            "epochs": [h for h in saved["epochs"] if h["epoch"] < epoch],
                            "checkpoints": [h for h in saved.get("checkpoints", []) if h["step"] <= step],
                            "changes": [h for h in saved.get("changes", []) if h["step"] <= step]}
        self._apply_recipe_changes(json.loads(self.state.recipe.numpy().decode()), step, diverged)
        logging.info("resumed %s at step %d (epoch %d, batch %d of it)", latest, step, epoch,
                     int(self.state.step_in_epoch.numpy()))
        return True

    def _read_diverged(self):
        """After a loss blow-up: refuse to resume at the learning rate that diverged; at a lower one, set aside
        the checkpoints after the last one from before the blow-up, so that one is resumed."""
        path = self.checkpoint_dir / "diverged.json"
        if not path.is_file():
            return None
        diverged = json.loads(path.read_text())
        good = diverged["resume_from"]
        if self.config.learning_rate >= diverged["learning_rate"]:
            where = f"ckpt-{good}" if good is not None else "the start"
            raise NonFiniteLoss(f"this run diverged at step {diverged['step']} with --learning_rate="
                                f"{diverged['learning_rate']:g}: rerun with a lower --learning_rate to resume from "
                                f"{where}")
        if self.is_chief:
            for prefix in checkpoints.complete(self.checkpoint_dir):
                if good is None or checkpoints.step_of(prefix) > good:
                    checkpoints.set_aside(prefix, "diverged")
            path.unlink()   # done: the folder's newest checkpoint is now the one from before the blow-up
        return diverged

    def _apply_recipe_changes(self, saved, step, diverged):
        """Compare the recipe of the restored checkpoint with this Trainer's: refuse FIXED_ON_RESUME changes,
        record the others with the step they apply from, and rescale the learning rate to a new initial one."""
        current = json.loads(recipe_json(self.config))
        fixed = [f"{k}={current[k]} (started with {saved[k]})" for k in FIXED_ON_RESUME
                 if k in saved and saved[k] != current[k]]
        if fixed:
            raise RecipeChanged(f"{self.run_dir} was started with other flags: {', '.join(fixed)}; these cannot "
                                "change mid-run: use another --run_dir")
        for key in sorted(k for k in current if k in saved and saved[k] != current[k]):
            change = {"step": step, "setting": key, "from": saved[key], "to": current[key]}
            if key == "learning_rate":
                rescaled = current[key] / self.config.lr_drop_factor ** int(self.state.drops.numpy())
                self.state.learning_rate.assign(rescaled)
                change["learning_rate_now"] = rescaled
                if diverged is not None:
                    change["why"] = f"the loss diverged at step {diverged['step']}"
            self.history["changes"].append(change)
            logging.info("resuming with %s=%s (was %s): applied from step %d", key, current[key], saved[key], step)
        self.state.recipe.assign(recipe_json(self.config))

    def weights_are_finite(self):
        return all(bool(tf.reduce_all(tf.math.is_finite(v.value))) for v in self.model.trainable_variables)

    def checkpoint_bytes(self):
        """The size of a checkpoint: the weights and their velocities."""
        variables = list(self.model.variables) + self.optimizer.velocities
        return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)

    def save(self, end_of_epoch=False):
        """Write history.json, then a checkpoint of the weights (never of non-finite weights), then prune to the
        keep policy. History first: after a kill between the two, the resumed run keeps the entries up to its
        checkpoint's step."""
        if not self.is_chief:
            return None
        step = int(self.state.step.numpy())
        if not self.weights_are_finite():
            raise self._diverged(f"the weights became NaN or infinite by step {step}", step)
        same_step = [r for r in self.history["checkpoints"] if r["step"] == step]   # saved again at an epoch's end
        losses = self._losses_since_save
        loss = float(np.mean(losses)) if losses else (same_step[0]["loss"] if same_step else None)
        self.history["checkpoints"] = [r for r in self.history["checkpoints"] if r["step"] != step] + [
            {"step": step, "loss": loss, "end_of_epoch": end_of_epoch}]
        self._write_json("history.json", self.history)
        path = checkpoints.write(self.checkpoint, self.checkpoint_dir, step, self.checkpoint_bytes())
        self._losses_since_save = []
        checkpoints.prune(self.checkpoint_dir, self._steps_to_keep())
        return path

    def _write_json(self, name, obj):
        try:
            write_json_atomically(self.run_dir / name, obj)
        except OSError as e:
            pathlib.Path(str(self.run_dir / name) + ".tmp").unlink(missing_ok=True)
            raise checkpoints.CheckpointWriteError(f"could not write {self.run_dir / name} ({e.strerror or e}); "
                                                   "free space and rerun the same command to resume") from None

    def _steps_to_keep(self):
        """The newest keep_checkpoints, the last epoch's end, and the last one from before a loss blow-up."""
        on_disk = [checkpoints.step_of(p) for p in checkpoints.complete(self.checkpoint_dir)]
        ends = [r["step"] for r in self._records_on_disk() if r["end_of_epoch"]]
        good = self._last_before_blow_up()
        return set(on_disk[-self.config.keep_checkpoints:]) | set(ends[-1:]) | ({good["step"]} if good else set())

    def _records_on_disk(self):
        """history.json's records of the checkpoints still in the folder, oldest first."""
        on_disk = {checkpoints.step_of(p) for p in checkpoints.complete(self.checkpoint_dir)}
        return [r for r in self.history["checkpoints"] if r["step"] in on_disk]

    def _last_before_blow_up(self):
        return checkpoints.last_before_blow_up(self._records_on_disk(), self.data.num_classes)

    def _diverged(self, what, step):
        """A NonFiniteLoss naming the checkpoint from before the blow-up, which the next run resumes from when
        given a lower learning rate (diverged.json tells it)."""
        good = self._last_before_blow_up()
        lr = self.config.learning_rate
        if self.is_chief:
            self._write_json("checkpoints/diverged.json", {"step": step, "learning_rate": lr,
                                                           "resume_from": good["step"] if good else None})
        if good:
            advice = (f"checkpoint ckpt-{good['step']} (mean loss {good['loss']:.3f}) precedes the blow-up and is "
                      f"kept: rerun with --learning_rate below {lr:g} to resume from it")
        else:
            advice = f"no checkpoint precedes the blow-up: rerun with --learning_rate below {lr:g} to start again"
        return NonFiniteLoss(f"{what}; {advice}")

    # --- the loop -------------------------------------------------------------------------------------------
    def is_finished(self):
        """The schedule ended the run, or it has trained its epochs or max_steps."""
        return bool(self.state.finished.numpy()) or int(self.state.epoch.numpy()) >= self.config.epochs or bool(
            self.config.max_steps and int(self.state.step.numpy()) >= self.config.max_steps)

    def train(self):
        """Train until the epochs, the schedule or max_steps end the run; returns results (also results.json).
        A finished run trains nothing: it reports its results.json (or, when that is missing, evaluates)."""
        if self.is_chief:
            runs.lock(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self._restored:
            self.restore()
        previous = self._previous_results()
        if self.is_finished():
            if previous is not None:
                logging.info("%s finished at step %d: nothing to train (raise --max_steps or --epochs to continue "
                             "it); its results are in %s", self.run_dir, previous["steps"],
                             self.run_dir / "results.json")
                return previous
            logging.info("%s finished at step %d: evaluating it", self.run_dir, int(self.state.step.numpy()))
            return self._finish(0.0, None)
        if previous is not None:
            logging.info("%s had finished at step %d; continuing it (--epochs=%d, --max_steps=%d)", self.run_dir,
                         previous["steps"], self.config.epochs, self.config.max_steps)
        self._record_skipped_files()
        self.writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard")) if self.is_chief else \
            tf.summary.create_noop_writer()
        return self._train_epochs()

    def _previous_results(self):
        """results.json of this run at the restored step, if it has one."""
        try:
            results = json.loads((self.run_dir / "results.json").read_text())
        except (OSError, ValueError):
            return None
        return results if results.get("steps") == int(self.state.step.numpy()) else None

    def _record_skipped_files(self):
        """Name every image file the data pipeline could not read: the first few in the log, all of them in
        skipped_files.txt."""
        skipped = getattr(self.data, "skipped_files", {})
        lines = [f"{split}\t{path}\t{why}" for split, files in skipped.items() for path, why in files]
        if lines and self.is_chief:
            (self.run_dir / "skipped_files.txt").write_text("\n".join(lines) + "\n")

    def _train_epochs(self):
        start_time = time.time()
        images_seen, train_seconds = 0, 0.0
        stop = False
        stop_request = StopRequest()
        try:
            steps_per_epoch = self.data.steps_per_epoch(self.config.batch_size)
            if steps_per_epoch < 1:
                raise input_pipeline.DataError(f"{self.data.train_size()} training images make no batch of "
                                               f"{self.config.batch_size}; lower --batch_size")
            while not self.is_finished() and not stop:
                epoch = int(self.state.epoch.numpy())
                start = int(self.state.step_in_epoch.numpy())
                tick, tick_images = time.time(), 0
                for images, labels in self.data.train_batches(self.config.batch_size, self.config.seed, epoch, start,
                                                              shard=self.shard):
                    loss, top1, top5, applied = self._train_step(images, labels, self.state.step.read_value(),
                                                                 self.state.learning_rate.read_value())
                    loss = float(loss)
                    overflow = self.loss_scale is not None and np.isfinite(loss)   # float16 gradients overflowed
                    if not bool(applied) and not overflow:   # skipped: the weights are still the last good ones
                        raise self._diverged(f"loss became {loss} (or its gradients non-finite) at step "
                                             f"{int(self.state.step.numpy()) + 1}", int(self.state.step.numpy()) + 1)
                    self._losses_since_save.append(loss)
                    self.state.step.assign_add(1)
                    self.state.step_in_epoch.assign_add(1)
                    step = int(self.state.step.numpy())
                    tick_images += int(labels.shape[0])
                    if step % self.config.log_every == 0:
                        seconds = time.time() - tick
                        images_seen, train_seconds = images_seen + tick_images, train_seconds + seconds
                        self._log_train(step, epoch, loss, float(top1), float(top5), tick_images / seconds)
                        tick, tick_images = time.time(), 0
                    if step % self.config.checkpoint_every == 0:
                        self.save()
                    if stop_request:   # a consistent point: the weights, the counters and the data position agree
                        self._stop_and_save(stop_request)
                    if self.config.max_steps and step >= self.config.max_steps:
                        stop = True
                        break
                if stop and int(self.state.step_in_epoch.numpy()) < steps_per_epoch:
                    self.save()
                    break
                self._end_epoch(epoch)
            if stop_request:
                self._stop_and_save(stop_request)
        except KeyboardInterrupt:   # a second Ctrl-C, or one before the loop installed its handler
            self._stop_and_save(stop_request)
        finally:
            stop_request.restore()
        return self._finish(time.time() - start_time, images_seen / train_seconds if train_seconds else None)

    def _stop_and_save(self, stop_request):
        """End the run on Ctrl-C / SIGTERM: save at a consistent point, or keep the last save if the stop was
        forced mid-step (the state may be half updated); raises Interrupted."""
        latest = (checkpoints.complete(self.checkpoint_dir) or [None])[-1]
        if stop_request.forced:
            kept = f"the last checkpoint {latest} is intact" if latest else "no checkpoint had been written yet"
            raise Interrupted(f"stopped at once; {kept}: rerun the same command to "
                              f"{'resume' if latest else 'start again'}") from None
        path = self.save() if self.weights_are_finite() else latest
        raise Interrupted(f"interrupted at step {int(self.state.step.numpy())}; checkpoint {path} saved: "
                          "rerun the same command to resume") from None

    def _log_train(self, step, epoch, loss, top1, top5, images_per_second):
        lr = float(self.state.learning_rate.numpy())
        logging.info("step %d  epoch %d  loss %.4f  top-1 err %.3f  top-5 err %.3f  lr %.5f  %.1f images/s",
                     step, epoch + 1, loss, top1, top5, lr, images_per_second)
        self.history["train"].append({"step": step, "epoch": epoch, "loss": loss, "top1_error": top1,
                                      "top5_error": top5, "learning_rate": lr, "images_per_second":
                                      images_per_second})
        with self.writer.as_default(step=step):
            tf.summary.scalar("train/loss", loss)
            tf.summary.scalar("train/top1_error", top1)
            tf.summary.scalar("train/top5_error", top5)
            tf.summary.scalar("learning_rate", lr)
            tf.summary.scalar("images_per_second", images_per_second)

    def evaluate(self, ten_crop=False, limit=None, split="eval"):
        return evaluate_lib.evaluate(self.model, self.data, self.config.eval_batch_size, ten_crop=ten_crop,
                                     limit=limit, predict=self.predict, split=split)

    def validation_split(self):
        """What the schedule watches: the held-out validation split when the data has one, else "eval"."""
        return "val" if getattr(self.data, "has_validation", lambda: False)() else "eval"

    def _centre_evaluation(self):
        """The centre-crop error of the weights as they are now, reusing the last epoch's full validation."""
        if self._full_evaluation and self._full_evaluation[0] == int(self.state.step.numpy()):
            return self._full_evaluation[1]
        return self.evaluate()

    def _end_epoch(self, epoch):
        """Validation error, the learning-rate schedule (PAPER.md 3), TensorBoard images, a checkpoint."""
        split = self.validation_split()
        val = self.evaluate(limit=self.config.eval_limit or None, split=split)
        # a validation over the whole evaluation split is also the final centre-crop evaluation if no step follows
        whole = split == "eval" and not self.config.eval_limit
        self._full_evaluation = (int(self.state.step.numpy()), val) if whole else None
        recent = [h for h in self.history["train"] if h["epoch"] == epoch]
        record = {"epoch": epoch, "step": int(self.state.step.numpy()),
                  "learning_rate": float(self.state.learning_rate.numpy()),
                  "val_top1_error": val["top1_error"], "val_top5_error": val["top5_error"], "val_split": split,
                  "train_loss": float(np.mean([h["loss"] for h in recent])) if recent else None,
                  "train_top1_error": float(np.mean([h["top1_error"] for h in recent])) if recent else None}
        self.history["epochs"].append(record)
        logging.info("epoch %d done: validation top-1 err %.4f  top-5 err %.4f", epoch + 1, val["top1_error"],
                     val["top5_error"])
        with self.writer.as_default(step=int(self.state.step.numpy())):
            tf.summary.scalar("val/top1_error", val["top1_error"])
            tf.summary.scalar("val/top5_error", val["top5_error"])
            for t, kernel in enumerate(kernels.tower_conv1_kernels(self.model)):
                tf.summary.image(f"conv1_kernels/tower_{t}", kernels.kernel_grid(kernel)[None])
        self._schedule(val["top1_error"], epoch)
        self.state.epoch.assign(epoch + 1)
        self.state.step_in_epoch.assign(0)
        self.save(end_of_epoch=True)

    def _schedule(self, val_error, epoch=None):
        """The plateau schedule (replica.training.schedule) on the state the checkpoint keeps, or, with lr_drop_epochs,
        the fixed one: the learning rate divided at the end of each of those epochs."""
        st = self.state
        if self.config.lr_drop_epochs:
            if epoch is not None and epoch + 1 in self.config.lr_drop_epochs:
                st.drops.assign_add(1)
                st.learning_rate.assign(st.learning_rate / self.config.lr_drop_factor)
                logging.info("epoch %d ends: learning rate now %.6f (fixed schedule)", epoch + 1,
                             float(st.learning_rate.numpy()))
            return
        before = schedule.PlateauState(float(st.learning_rate.numpy()), float(st.best_error.numpy()),
                                       int(st.epochs_without_improvement.numpy()), int(st.drops.numpy()),
                                       bool(st.finished.numpy()))
        after, event = schedule.after_epoch(before, val_error, self.config.lr_patience, self.config.lr_drops,
                                            self.config.lr_drop_factor)
        st.learning_rate.assign(after.learning_rate)
        st.best_error.assign(after.best_error)
        st.epochs_without_improvement.assign(after.stale_epochs)
        st.drops.assign(after.drops)
        st.finished.assign(after.finished)
        if event == "drop":
            logging.info("validation error stopped improving: learning rate now %.6f", after.learning_rate)
        elif event == "end":
            logging.info("validation error stopped improving after the last drop: the run ends")

    def _finish(self, wall_seconds, images_per_second):
        epochs = self.history["epochs"]
        results = dict(self.run_info)
        results.update({
            "data": {"name": self.data.name, "source": self.data.source, "train_images": self.data.train_size(),
                     "eval_images": self.data.eval_size(),
                     "skipped_files": {split: len(files) for split, files in
                                       getattr(self.data, "skipped_files", {}).items()}},
            "changes": self.history["changes"],
            "config": dataclasses.asdict(self.config),
            "paper_constants": paper_constants(),
            "devices": [self.model.tower_device(t) or "default" for t in self.model.towers],
            "workers": self.shard[1],
            "precision": precision.in_force(self.precision),
            "schedule_watched": "the held-out validation split" if self.validation_split() == "val" else
                                "the evaluation split, which is also reported",
            "loss_scale_overflows": int(self.loss_scale.overflows.numpy()) if self.loss_scale else 0,
            "steps": int(self.state.step.numpy()),
            "epochs_completed": int(self.state.epoch.numpy()),
            "wall_seconds": wall_seconds,   # of the process that finished the run
            "train_images_per_second": images_per_second,
            "best_val_top1_error": min((e["val_top1_error"] for e in epochs), default=None),
            "best_val_top5_error": min((e["val_top5_error"] for e in epochs), default=None),
            "history_last_train_top1": epochs[-1]["train_top1_error"] if epochs else None,
        })
        centre = self._centre_evaluation()
        results["final"] = {"centre_top1_error": centre["top1_error"], "centre_top5_error": centre["top5_error"],
                            "eval_images": centre["images"]}
        if self.config.final_ten_crop:
            ten = self.evaluate(ten_crop=True)
            results["final"].update({"ten_crop_top1_error": ten["top1_error"],
                                     "ten_crop_top5_error": ten["top5_error"]})
        if self.is_chief:
            self._write_json("results.json", results)
        return results


def paper_constants():
    return {k: v for k, v in vars(paper).items() if k.isupper() and isinstance(v, (int, float, str, tuple))}


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM during training asks the loop to stop after the current step, at a point where the
    weights, the step counters and the data position agree (a KeyboardInterrupt raised between the weight update
    and the counter update would checkpoint a step as not yet taken). A second signal stops at once, without
    saving. Truthy once a stop was asked for."""

    def __init__(self):
        self.signals, self.forced = [], False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.signals:
            self.forced = True
            raise KeyboardInterrupt
        self.signals.append(signum)
        logging.warning("stopping after this step (Ctrl-C again stops at once, without saving)")

    def __bool__(self):
        return bool(self.signals)

    def restore(self):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
