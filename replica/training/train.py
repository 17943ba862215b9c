"""Training with the paper's recipe (PAPER.md 3, paper 5), read top to bottom: restore the run folder's newest
sound checkpoint, train epoch by epoch (replica.training.step), validate and follow the learning-rate schedule
(replica.training.schedule) at each epoch's end, checkpoint (replica.training.checkpoints), and finish with the
centre-crop and 10-crop evaluation in results.json. The recipe is replica.training.recipe.TrainConfig; the log,
history and TensorBoard are replica.training.metrics; a blow-up and a resume are replica.training.resume.
"""
import dataclasses
import json
import pathlib
import time

import numpy as np
import tensorflow as tf
from absl import logging

from replica import files
from replica.inputs.data_set import DataError
from replica.net import precision
from replica.training import checkpoints, metrics, resume, runs, schedule
from replica.training import evaluate as evaluate_lib
from replica.training.optimizer import PaperSGD
from replica.training.recipe import TrainConfig, changes_on_resume, paper_constants, recipe_json
from replica.training.step import make_train_step
from replica.training.stopping import Interrupted, StopRequest


class Trainer:
    """Trains `model` on `data` (a `replica.inputs.data_set.ImageData`) in `run_dir`, resuming from its checkpoint.

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
        self.state = resume.RunState(config)
        self.precision = getattr(model, "precision", "float32")
        self.loss_scale = precision.LossScale() if self.precision == "mixed_float16" else None
        self.checkpoint = tf.train.Checkpoint(model=model, velocities=self.optimizer.velocities,
                                              **self.state.trackables(),
                                              **(self.loss_scale.trackables() if self.loss_scale else {}))
        self.metrics = metrics.Metrics()
        self._losses_since_save = []
        self._restored = False
        self._full_evaluation = None   # (step, the validation over the whole split at that step)
        self.predict = evaluate_lib.make_predict(model)
        step = make_train_step(model, self.optimizer, config.seed, workers.all_reduce_mean if workers else None,
                               loss_scale=self.loss_scale, network_input=data.network_input)
        self._train_step = workers.wrap(step) if workers else step

    # --- checkpoints ----------------------------------------------------------------------------------------
    def restore(self):
        """Restore the newest sound checkpoint of the run folder, if any (replica.training.checkpoints); apply what the
        caller's recipe changes (FIXED_ON_RESUME refused). Returns whether a checkpoint was restored."""
        self._restored = True
        if self.is_chief:
            checkpoints.remove_partial_writes(self.checkpoint_dir)
            files.remove_leftovers(self.run_dir)
        diverged = resume.read_diverged(self.checkpoint_dir, self.config.learning_rate, self.is_chief)
        latest = checkpoints.restore_newest(self.checkpoint, self.checkpoint_dir, writer=self.is_chief)
        if not latest:
            return False
        step, epoch = int(self.state.step.numpy()), int(self.state.epoch.numpy())
        history_file = self.run_dir / "history.json"
        if history_file.is_file():
            history = runs.read_json(history_file, f"move it aside and rerun to resume at step {step} without the "
                                     "learning curves before it (the checkpoints are intact)")
            self.metrics.history = metrics.history_up_to(history, step, epoch)
        self._apply_recipe_changes(json.loads(self.state.recipe.numpy().decode()), step, diverged)
        logging.info("resumed %s at step %d (epoch %d, batch %d of it)", latest, step, epoch,
                     int(self.state.step_in_epoch.numpy()))
        return True

    def _apply_recipe_changes(self, saved, step, diverged):
        """Record each change of the recipe from the restored checkpoint's with the step it applies from, and
        rescale the learning rate to a new initial one (replica.training.recipe.changes_on_resume)."""
        for key, before, now in changes_on_resume(saved, self.config, self.run_dir):
            change = {"step": step, "setting": key, "from": before, "to": now}
            if key == "learning_rate":
                rescaled = now / self.config.lr_drop_factor ** int(self.state.drops.numpy())
                self.state.learning_rate.assign(rescaled)
                change["learning_rate_now"] = rescaled
                if diverged is not None:
                    change["why"] = f"the loss diverged at step {diverged['step']}"
            self.metrics.history["changes"].append(change)
            logging.info("resuming with %s=%s (was %s): applied from step %d", key, now, before, step)
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
        # saved again at an epoch's end
        same_step = [r for r in self.metrics.history["checkpoints"] if r["step"] == step]
        losses = self._losses_since_save
        loss = float(np.mean(losses)) if losses else (same_step[0]["loss"] if same_step else None)
        self.metrics.history["checkpoints"] = [r for r in self.metrics.history["checkpoints"] if r["step"] != step] + [
            {"step": step, "loss": loss, "end_of_epoch": end_of_epoch}]
        runs.write_json_atomically(self.run_dir / "history.json", self.metrics.history)
        path = checkpoints.write(self.checkpoint, self.checkpoint_dir, step, self.checkpoint_bytes())
        self._losses_since_save = []
        checkpoints.prune(self.checkpoint_dir, self._steps_to_keep())
        return path

    def _steps_to_keep(self):
        """The newest keep_checkpoints, the last epoch's end, and the last one from before a loss blow-up."""
        on_disk = [checkpoints.step_of(p) for p in checkpoints.complete(self.checkpoint_dir)]
        ends = [r["step"] for r in self._records_on_disk() if r["end_of_epoch"]]
        good = self._last_before_blow_up()
        return set(on_disk[-self.config.keep_checkpoints:]) | set(ends[-1:]) | ({good["step"]} if good else set())

    def _records_on_disk(self):
        """history.json's records of the checkpoints still in the folder, oldest first."""
        on_disk = {checkpoints.step_of(p) for p in checkpoints.complete(self.checkpoint_dir)}
        return [r for r in self.metrics.history["checkpoints"] if r["step"] in on_disk]

    def _last_before_blow_up(self):
        return checkpoints.last_before_blow_up(self._records_on_disk(), self.data.num_classes)

    def _diverged(self, what, step):
        """A NonFiniteLoss naming the checkpoint from before the blow-up (replica.training.resume.diverged)."""
        return resume.diverged(self.checkpoint_dir, what, step, self.config.learning_rate,
                               self._last_before_blow_up(), self.is_chief)

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
        self.metrics.open_writer(self.run_dir, self.is_chief)
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
            runs.write_atomically(self.run_dir / "skipped_files.txt", "\n".join(lines) + "\n")

    def _train_epochs(self):
        """Epoch after epoch until the run is finished, max_steps is reached or a stop is asked for."""
        start_time, speed = time.time(), Throughput()
        stop_request = StopRequest()
        try:
            steps_per_epoch = self.data.steps_per_epoch(self.config.batch_size)
            if steps_per_epoch < 1:
                raise DataError(f"{self.data.train_size()} training images make no batch of "
                                f"{self.config.batch_size}; lower --batch_size")
            while not self.is_finished():
                epoch = int(self.state.epoch.numpy())
                reached_max_steps = self._train_epoch(epoch, stop_request, speed)
                if reached_max_steps and int(self.state.step_in_epoch.numpy()) < steps_per_epoch:
                    self.save()   # mid-epoch: no validation, the next run continues this epoch
                    break
                self._end_epoch(epoch)
                if reached_max_steps:
                    break
            if stop_request:
                self._stop_and_save(stop_request)
        except KeyboardInterrupt:   # a second Ctrl-C, or one before the loop installed its handler
            self._stop_and_save(stop_request)
        finally:
            stop_request.restore()
        return self._finish(time.time() - start_time, speed.images_per_second())

    def _train_epoch(self, epoch, stop_request, speed):
        """The rest of `epoch`'s batches from the step it is at (the data position is the step's). Returns whether
        max_steps was reached."""
        speed.start_interval()
        start = int(self.state.step_in_epoch.numpy())
        for images, labels in self.data.train_batches(self.config.batch_size, self.config.seed, epoch, start,
                                                      shard=self.shard):
            step, loss, top1, top5 = self._take_step(images, labels)
            speed.count(int(labels.shape[0]))
            if step % self.config.log_every == 0:
                self.metrics.train_point(step, epoch, loss, top1, top5, float(self.state.learning_rate.numpy()),
                                         speed.end_interval())
            if step % self.config.checkpoint_every == 0:
                self.save()
            if stop_request:   # a consistent point: the weights, the counters and the data position agree
                self._stop_and_save(stop_request)
            if self.config.max_steps and step >= self.config.max_steps:
                return True
        return False

    def _take_step(self, images, labels):
        """One step of SGD; a non-finite loss (not a float16 overflow, which the loss scale skips) is a
        NonFiniteLoss naming the checkpoint to resume from. Returns (step, loss, top-1 err, top-5 err)."""
        loss, top1, top5, applied = self._train_step(images, labels, self.state.step.read_value(),
                                                     self.state.learning_rate.read_value())
        loss = float(loss)
        overflow = self.loss_scale is not None and np.isfinite(loss)   # float16 gradients overflowed
        if not bool(applied) and not overflow:   # skipped: the weights are still the last good ones
            step = int(self.state.step.numpy()) + 1
            raise self._diverged(f"loss became {loss} (or its gradients non-finite) at step {step}", step)
        self._losses_since_save.append(loss)
        self.state.step.assign_add(1)
        self.state.step_in_epoch.assign_add(1)
        return int(self.state.step.numpy()), loss, float(top1), float(top5)

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
        val = self.evaluate(limit=self.config.eval_limit, split=split)
        # a validation over the whole evaluation split is also the final centre-crop evaluation if no step follows
        whole = split == "eval" and not self.config.eval_limit
        self._full_evaluation = (int(self.state.step.numpy()), val) if whole else None
        self.metrics.epoch_point(epoch, int(self.state.step.numpy()), float(self.state.learning_rate.numpy()), val,
                                 split, self.model)
        self._schedule(val["top1_error"], epoch)
        self.state.epoch.assign(epoch + 1)
        self.state.step_in_epoch.assign(0)
        self.save(end_of_epoch=True)

    def _schedule(self, val_error, epoch=None):
        """The learning-rate schedule (replica.training.schedule) on the state the checkpoint keeps: the plateau rule,
        or, with lr_drop_epochs, the fixed one."""
        st, c = self.state, self.config
        before = schedule.PlateauState(float(st.learning_rate.numpy()), float(st.best_error.numpy()),
                                       int(st.epochs_without_improvement.numpy()), int(st.drops.numpy()),
                                       bool(st.finished.numpy()))
        if c.lr_drop_epochs:
            after, event = (schedule.after_fixed_epoch(before, epoch, c.lr_drop_epochs, c.lr_drop_factor)
                            if epoch is not None else (before, None))
        else:
            after, event = schedule.after_epoch(before, val_error, c.lr_patience, c.lr_drops, c.lr_drop_factor)
        st.learning_rate.assign(after.learning_rate)
        st.best_error.assign(after.best_error)
        st.epochs_without_improvement.assign(after.stale_epochs)
        st.drops.assign(after.drops)
        st.finished.assign(after.finished)
        if event == "drop":
            why = (f"epoch {epoch + 1} ended (fixed schedule)" if c.lr_drop_epochs else
                   "validation error stopped improving")
            logging.info("%s: learning rate now %.6f", why, after.learning_rate)
        elif event == "end":
            logging.info("validation error stopped improving after the last drop: the run ends")

    def _finish(self, wall_seconds, images_per_second):
        epochs = self.metrics.history["epochs"]
        results = dict(self.run_info)
        results.update({
            "data": {"name": self.data.name, "source": self.data.source, "train_images": self.data.train_size(),
                     "eval_images": self.data.eval_size(),
                     "skipped_files": {split: len(files) for split, files in
                                       getattr(self.data, "skipped_files", {}).items()}},
            "changes": self.metrics.history["changes"],
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
            runs.write_json_atomically(self.run_dir / "results.json", results)
        return results


class Throughput:
    """Training images per second, over the intervals between progress lines (evaluation and checkpoints between
    epochs are not counted)."""

    def __init__(self):
        self.images, self.seconds = 0, 0.0
        self.start_interval()

    def start_interval(self):
        self.tick, self.tick_images = time.time(), 0

    def count(self, images):
        self.tick_images += images

    def end_interval(self):
        """The interval's rate; the next interval starts now."""
        seconds = time.time() - self.tick
        self.images, self.seconds = self.images + self.tick_images, self.seconds + seconds
        rate = self.tick_images / seconds
        self.start_interval()
        return rate

    def images_per_second(self):
        return self.images / self.seconds if self.seconds else None

