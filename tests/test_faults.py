"""Trust under faults: each test builds its damaged input itself (in tmp_path) or injects the fault through a seam
(replica.training.checkpoints.write_files, the train step), and checks that no number comes out wrong and no progress is
lost."""
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import replica
from replica import files
from replica.training import checkpoints, runs, train
from replica.training.recipe import RecipeChanged, TrainConfig
from replica.training.resume import NonFiniteLoss
from replica.training.stopping import Interrupted
from replica.inputs import cache, cifar10, data_set, image_folder, transforms
from replica.inputs import input_pipeline as ip
from tests.conftest import REPO

SMALL = dict(batch_size=16, eval_batch_size=64, eval_limit=32, log_every=1, final_ten_crop=False)


@pytest.fixture(scope="module")
def small_data():
    return ip.load_data("cifar10", train_limit=64)   # 4 steps an epoch


def small_model(towers=2):
    tf.keras.utils.set_random_seed(0)
    devices = replica.tower_devices(2, "0,1") if towers == 2 else None
    return replica.build_model(towers, num_classes=10, input_size=32, devices=devices, positive_bias=0.1)


def trainer(data, run_dir, **overrides):
    return train.Trainer(small_model(), data, run_dir, TrainConfig(**{**SMALL, **overrides}))


def saved_steps(run_dir):
    return [checkpoints.step_of(p) for p in checkpoints.complete(pathlib.Path(run_dir) / "checkpoints")]


def restored_step(run_dir, data, **overrides):
    t = trainer(data, run_dir, **overrides)
    t.restore()
    return t, int(t.state.step.numpy())


# --- image folders ---------------------------------------------------------------------------------------------
def write_jpeg(path, seed):
    image = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(image).numpy())


def image_tree(root, classes=("cat", "dog"), per_class=3):
    for split in ("train", "val"):
        for c in classes:
            for k in range(per_class):
                write_jpeg(root / split / c / f"{c}_{k}.JPEG", hash((split, c, k)) % 1000)
    return root


def test_only_folders_with_images_are_classes_and_hidden_entries_are_ignored(tmp_path):
    root = image_tree(tmp_path / "data")
    for split in ("train", "val"):
        (root / split / "empty").mkdir()
        write_jpeg(root / split / ".hidden" / "x.JPEG", 1)        # sorts first: would shift every label
        write_jpeg(root / split / "cat" / "._cat_0.JPEG", 2)      # macOS' AppleDouble companion
    data = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")
    assert data.classes == ["cat", "dog"] and data.num_classes == 2
    assert [(pathlib.Path(p).name, y) for p, y in data.files["eval"]] == [
        ("cat_0.JPEG", 0), ("cat_1.JPEG", 0), ("cat_2.JPEG", 0), ("dog_0.JPEG", 1), ("dog_1.JPEG", 1),
        ("dog_2.JPEG", 1)]


def test_a_class_with_images_in_one_split_only_is_an_error_naming_it(tmp_path):
    root = image_tree(tmp_path / "data")
    write_jpeg(root / "train" / "emu" / "emu_0.JPEG", 3)
    (root / "val" / "emu").mkdir()
    with pytest.raises(data_set.DataError, match=r"class emu has images in .*train but none in .*val"):
        image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")


def test_unreadable_images_are_named_and_counted_every_run(tmp_path, caplog):
    root = image_tree(tmp_path / "data")
    (root / "train" / "cat" / "broken.JPEG").write_bytes(b"not a jpeg")
    (root / "val" / "dog" / "truncated.JPEG").write_bytes((root / "val" / "dog" / "dog_0.JPEG").read_bytes()[:40])
    for run in range(2):   # the second run reads the cached scan and must still name them
        caplog.clear()
        data = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")
        assert [pathlib.Path(p).name for p, _ in data.skipped_files["train"]] == ["broken.JPEG"]
        assert [pathlib.Path(p).name for p, _ in data.skipped_files["eval"]] == ["truncated.JPEG"]
        assert data.train_size() == 6 and data.eval_size() == 6
        assert "broken.JPEG" in caplog.text and "truncated.JPEG" in caplog.text
    images = sum(int(labels.shape[0]) for _, labels in data.eval_batches(4))
    assert images == 6   # the evaluation counts what it evaluated


def test_skipped_files_reach_the_run_folder_and_results(tmp_path):
    root = image_tree(tmp_path / "data")
    (root / "val" / "cat" / "broken.JPEG").write_bytes(b"\xff\xd8 garbage")
    data = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")
    model = replica.build_model(1, num_classes=2, input_size=227)
    run_dir = tmp_path / "run"
    results = train.Trainer(model, data, run_dir, TrainConfig(
        batch_size=2, epochs=1, max_steps=1, log_every=1, final_ten_crop=False)).train()
    assert results["data"]["skipped_files"] == {"train": 0, "eval": 1}
    assert "broken.JPEG" in (run_dir / "skipped_files.txt").read_text()
    assert results["final"]["eval_images"] == 6


def test_a_damaged_cache_is_computed_again_and_a_failed_cache_write_loses_nothing(tmp_path, monkeypatch, caplog):
    root = image_tree(tmp_path / "data")
    first = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")
    stats_file, skipped_file = first.cache_dir / "stats.npz", first.cache_dir / "skipped.json"
    stats_file.write_bytes(stats_file.read_bytes()[:100])   # a disk fault, or a copy cut short
    skipped_file.write_text('{"train": [')
    again = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")
    assert "stats.npz is damaged" in caplog.text and "skipped.json is damaged" in caplog.text
    np.testing.assert_array_equal(again.stats.mean_image, first.stats.mean_image)
    assert again.skipped_files == first.skipped_files
    assert cache.read(stats_file, transforms.load_stats) is not None   # rewritten whole
    stats_file.unlink()

    def disk_full(path, **arrays):
        pathlib.Path(path).write_bytes(b"PK")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", disk_full)
    caplog.clear()
    uncached = image_folder.ImageFolder(root, cache_dir=tmp_path / "cache")   # what was computed is used
    np.testing.assert_array_equal(uncached.stats.mean_image, first.stats.mean_image)
    assert f"not cached: could not write {stats_file} (No space left on device)" in caplog.text
    assert sorted(p.name for p in first.cache_dir.iterdir()) == ["skipped.json"]   # no half file left


# --- CIFAR-10 batches -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage, message", [
    (lambda b: b.update({b"labels": b[b"labels"][:-3]}), "labels for"),
    (lambda b: b.update({b"data": b[b"data"][:, :3000]}), "not 3,072"),
    (lambda b: b.update({b"labels": [12] + list(b[b"labels"][1:])}), "not within 0..9"),
])
def test_a_damaged_cifar_batch_is_an_error_that_says_what_is_wrong(tmp_path, damage, message):
    import pickle
    folder = tmp_path / "cifar"
    shutil.copytree(cifar10.CIFAR10_SLICE, folder)
    with open(folder / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    damage(batch)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(data_set.DataError, match=message):
        cifar10.load_cifar10(folder)


def test_a_failed_or_corrupt_download_is_one_line_saying_what_to_do(monkeypatch):
    import keras
    asked = {}

    def offline(fname, origin, **kwargs):
        asked.update(kwargs)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(data_set.DataError, match=r"could not download CIFAR-10 from .*Name or service not known\); "
                                                 r"fetch cifar-10-python.tar.gz yourself"):
        cifar10.download_cifar10()
    assert asked["file_hash"] == "c58f30108f718f92721af3b95e74349a"   # a corrupt archive is refused, not extracted


def test_an_image_to_classify_that_cannot_be_read_is_named(tmp_path):
    from replica.inputs import photos
    (tmp_path / "notes.jpg").write_text("not a jpeg")
    for path in (tmp_path / "missing.jpg", tmp_path / "notes.jpg", tmp_path):   # absent, not an image, a folder
        with pytest.raises(data_set.DataError, match=f"{path}: not a readable image"):
            photos.read_image(path)


def test_class_names_come_from_any_copy_of_batches_meta_and_a_damaged_one_is_named(tmp_path):
    folder = tmp_path / "cifar"
    shutil.copytree(cifar10.CIFAR10_SLICE, folder)
    (folder / "batches.meta").unlink()
    assert cifar10.cifar10_class_names(folder)[:2] == ["airplane", "automobile"]
    (folder / "batches.meta").write_bytes(b"\x80\x04garbage")
    with pytest.raises(data_set.DataError, match=f"{folder / 'batches.meta'} is not a readable batches.meta"):
        cifar10.cifar10_class_names(folder)


def test_a_damaged_claims_file_or_shard_manifest_is_one_line_saying_how_to_restore_it(tmp_path, monkeypatch):
    from experiments import claims
    from replica.inputs import records
    damaged = tmp_path / "claims.json"
    damaged.write_text('{"dropout": {"verdict": ')   # cut short
    monkeypatch.setattr(claims, "CLAIMS_FILE", damaged)
    with pytest.raises(replica.errors.UserError, match=f"{damaged} is not readable .*; git checkout -- {damaged}"):
        claims.load()
    (tmp_path / records.MANIFEST).write_bytes(b"\x00" * 64)
    with pytest.raises(records.ShardError, match="manifest.json is not readable .*; rerun python -m replica.inputs.pre"):
        records.manifest_of(tmp_path)


# --- damaged checkpoints ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(small_data, tmp_path_factory):
    """A run folder with checkpoints at steps 2, 4 and 6 (and its history), to damage in copies."""
    run_dir = tmp_path_factory.mktemp("trained")
    trainer(small_data, run_dir, epochs=3, max_steps=6, checkpoint_every=2).train()
    assert saved_steps(run_dir) == [2, 4, 6]
    return run_dir


def copy_run(source, target):
    shutil.copytree(source, target)
    (target / "results.json").unlink()
    return target


def test_a_garbled_checkpoint_index_loses_nothing(small_data, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path / "run")
    (run_dir / "checkpoints" / "checkpoint").write_text("model_checkpoint_path: \x00\x01garbage{{")
    (run_dir / "history.4242.tmp.json").write_text('{"train": [')   # a write that a kill cut short
    _, step = restored_step(run_dir, small_data, epochs=3, max_steps=6)
    assert step == 6 and not (run_dir / "history.4242.tmp.json").exists()
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-6")   # the index is rewritten


@pytest.mark.parametrize("damage", ["truncated data", "bad index", "missing shard"])
def test_a_damaged_newest_checkpoint_gives_way_to_the_newest_sound_one(small_data, trained_run, tmp_path, damage,
                                                                      caplog):
    run_dir = copy_run(trained_run, tmp_path / "run")
    newest = pathlib.Path(checkpoints.complete(run_dir / "checkpoints")[-1])
    data_file = next(newest.parent.glob(newest.name + ".data-*"))
    if damage == "truncated data":
        data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    elif damage == "bad index":
        index = newest.parent / (newest.name + ".index")
        index.write_bytes(index.read_bytes()[:100] + b"\x00" * 64)
    else:
        data_file.unlink()
    t, step = restored_step(run_dir, small_data, epochs=3, max_steps=6)
    previous = saved_steps(trained_run)[-2]
    assert step == previous
    assert f"{newest} is damaged" in caplog.text and f"resuming from {run_dir / 'checkpoints'}/ckpt-{previous}" \
        in caplog.text
    assert (run_dir / "checkpoints" / "damaged" / (newest.name + ".index")).exists()
    # the run goes on from there, never writing over the damaged files
    history = json.loads((run_dir / "history.json").read_text())
    assert all(h["step"] <= previous for h in t.metrics.history["train"])
    assert len(history["train"]) >= len(t.metrics.history["train"])


@pytest.mark.parametrize("damaged, message", [("history.json", "move it aside and rerun to resume at step 6"),
                                               ("checkpoints/diverged.json", "delete it to resume")])
def test_a_damaged_run_file_is_one_line_naming_it_and_the_checkpoints_stay(small_data, trained_run, tmp_path,
                                                                          damaged, message):
    run_dir = copy_run(trained_run, tmp_path / "run")
    (run_dir / damaged).write_text('{"train": [{"step": 1, "loss"')
    with pytest.raises(runs.RunError) as failure:
        restored_step(run_dir, small_data, epochs=3, max_steps=6)
    assert "\n" not in str(failure.value) and str(run_dir / damaged) in str(failure.value)
    assert message in str(failure.value) and saved_steps(run_dir) == [2, 4, 6]


def test_a_checkpoint_of_another_network_is_an_error_not_a_partial_restore(small_data, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path / "run")
    config = dict(towers=2, num_classes=10, input_size=32, lrn="paper", pooling="overlapping", activation="relu",
                  dropout=0.5, positive_bias=0.1, precision="float32")
    runs.write_config(run_dir, config)
    runs.load_trained(run_dir)   # the network the run trained restores
    runs.write_config(run_dir, {**config, "towers": 1})
    with pytest.raises(runs.RunError, match="restores|does not restore"):
        runs.load_trained(run_dir)
    with pytest.raises(runs.RunError, match="does not exist"):
        runs.find_run(tmp_path / "no" / "such" / "run")


# --- finished runs, resuming with other settings ----------------------------------------------------------------
@pytest.mark.slow
def test_a_finished_run_trains_nothing_when_rerun(small_data, tmp_path):
    first = trainer(small_data, tmp_path, epochs=3, max_steps=3).train()
    again = trainer(small_data, tmp_path, epochs=3, max_steps=3).train()
    assert again["steps"] == first["steps"] == 3 and again == json.loads((tmp_path / "results.json").read_text())
    assert again["final"] == first["final"]
    (tmp_path / "results.json").unlink()   # killed between the last checkpoint and the results file
    t = trainer(small_data, tmp_path, epochs=3, max_steps=3)
    t._train_step = lambda *a: pytest.fail("a finished run must not train")
    evaluated = t.train()
    assert evaluated["steps"] == 3 and evaluated["final"]["centre_top1_error"] == first["final"]["centre_top1_error"]
    longer = trainer(small_data, tmp_path, epochs=3, max_steps=5).train()
    assert longer["steps"] == 5


@pytest.mark.slow
def test_resuming_with_a_new_learning_rate_applies_it_and_records_it(small_data, tmp_path):
    trainer(small_data, tmp_path, epochs=2, max_steps=3).train()
    t = trainer(small_data, tmp_path, epochs=2, max_steps=6, learning_rate=0.002)
    t.restore()
    assert np.isclose(float(t.state.learning_rate.numpy()), 0.002)
    results = t.train()
    assert results["config"]["learning_rate"] == 0.002
    changes = {c["setting"]: c for c in results["changes"]}
    assert changes["learning_rate"]["step"] == 3 and changes["learning_rate"]["from"] == 0.01
    assert changes["max_steps"]["to"] == 6
    assert [h["learning_rate"] for h in json.loads((tmp_path / "history.json").read_text())["train"]] == \
        pytest.approx([0.01] * 3 + [0.002] * 3)


def test_resuming_with_another_momentum_is_refused_and_changes_nothing(small_data, tmp_path):
    trainer(small_data, tmp_path, epochs=1, max_steps=2).train()
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(RecipeChanged, match="momentum=0.5 \\(started with 0.9\\)"):
        trainer(small_data, tmp_path, epochs=1, max_steps=4, momentum=0.5).train()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_a_write_is_whole_or_absent_and_its_leftovers_are_removed(tmp_path):
    path = tmp_path / "history.json"
    files.write_text_whole(path, "old")

    def disk_full(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        files.write_whole(path, disk_full)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["history.json"]
    (tmp_path / "history.4242.tmp.json").write_text("{")   # left by a killed process
    (tmp_path / "train-00000-of-00001.tmp").write_text("")
    assert files.remove_leftovers(tmp_path) == ["history.4242.tmp.json", "train-00000-of-00001.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


# --- two processes, a loss blow-up, a full disk, kills ----------------------------------------------------------
def test_a_run_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(runs.RunError, match=r"cannot write the run folder .*a-file/run \(Not a directory\); choose"):
        runs.lock(tmp_path / "a-file" / "run")
    full = tmp_path / "full-disk"
    full.mkdir()
    (full / "lock").symlink_to("/dev/full")   # every write: ENOSPC, as on a full disk
    with pytest.raises(runs.RunError, match=r"run folder .*full-disk \(No space left on device\); free space"):
        runs.lock(full)


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from replica.training import runs; "
                               f"runs.lock({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runs.RunError, match=f"in use by process {holder.pid}"):
            runs.lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    runs.lock(tmp_path)        # a killed holder leaves no stuck lock, and its name gives way to this process's
    assert (tmp_path / "lock").read_text() == f"process {os.getpid()} on {os.uname().nodename}"
    runs.release(tmp_path)


def blowing_up(step_fn, start, nan_at):
    """The real step, with the reported loss rising 100-fold from step `start` and NaN (update skipped) at
    `nan_at`: the bookkeeping of a diverging run."""
    calls = []

    def step(*args):
        loss, top1, top5, applied = step_fn(*args)
        calls.append(1)
        n = len(calls)
        if n >= nan_at:
            return tf.constant(float("nan")), top1, top5, tf.constant(False)
        return (loss * 100.0 ** (n >= start)), top1, top5, applied
    return step


@pytest.mark.slow
def test_after_a_blow_up_the_checkpoint_from_before_it_is_kept_named_and_resumable(small_data, tmp_path):
    t = trainer(small_data, tmp_path, epochs=5, checkpoint_every=2, keep_checkpoints=1, eval_limit=16)
    t._train_step = blowing_up(t._train_step, start=7, nan_at=13)   # checkpoints at 2, 4, 6 healthy; 8, 10, 12 not
    with pytest.raises(NonFiniteLoss) as failure:
        t.train()
    message = str(failure.value)
    assert "\n" not in message and "ckpt-6" in message and "--learning_rate below 0.01" in message
    assert 6 in saved_steps(tmp_path) and saved_steps(tmp_path)[-1] == 12   # the keep policy let it survive
    with pytest.raises(NonFiniteLoss, match="diverged at step 13 .*lower --learning_rate"):
        trainer(small_data, tmp_path, epochs=5, checkpoint_every=2).train()   # the same rate would diverge again
    t, step = restored_step(tmp_path, small_data, epochs=5, checkpoint_every=2, learning_rate=0.001)
    assert step == 6 and np.isclose(float(t.state.learning_rate.numpy()), 0.001)
    assert saved_steps(tmp_path) == [6] and (tmp_path / "checkpoints" / "diverged" / "ckpt-12.index").exists()
    assert t.metrics.history["changes"][-1]["why"] == "the loss diverged at step 13"


@pytest.mark.slow
def test_a_full_disk_while_saving_is_one_line_and_loses_nothing(small_data, tmp_path, monkeypatch):
    real_write = checkpoints.write_files

    def disk_full(checkpoint, prefix):
        if prefix.endswith("ckpt-4"):
            os.makedirs(prefix + "_temp", exist_ok=True)
            pathlib.Path(prefix + "_temp", "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 1000)
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        real_write(checkpoint, prefix)
    monkeypatch.setattr(checkpoints, "write_files", disk_full)
    with pytest.raises(checkpoints.CheckpointWriteError) as failure:
        trainer(small_data, tmp_path, epochs=2, checkpoint_every=2).train()
    message = str(failure.value)
    assert "\n" not in message and "disk is full" in message and "MB free" in message and "ckpt-2" in message
    assert not list((tmp_path / "checkpoints").glob("*_temp*")) and saved_steps(tmp_path) == [2]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    monkeypatch.setattr(checkpoints, "write_files", real_write)
    (tmp_path / "checkpoints" / "ckpt-9_temp").mkdir()   # a killed save's leftovers are cleaned on start
    results = trainer(small_data, tmp_path, epochs=2, checkpoint_every=2).train()
    assert results["steps"] == 8 and not list((tmp_path / "checkpoints").glob("*_temp*"))


def test_an_experiments_table_on_a_full_disk_is_one_line_and_leaves_the_old_table(tmp_path):
    from experiments import report
    (tmp_path / "dropout.md").write_text("the table of the last run")
    (tmp_path / f"dropout.{os.getpid()}.tmp.md").symlink_to("/dev/full")   # the write's temporary: ENOSPC
    with pytest.raises(replica.errors.UserError, match=r"could not write .*dropout.md \(No space left on device\); "
                                                       "free space and rerun the same command: the runs it finished"):
        report.write_table("dropout", "Dropout", [{"a": 1}], ["a"], out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["dropout.md"]
    assert (tmp_path / "dropout.md").read_text() == "the table of the last run"


def test_a_tensorboard_write_that_fails_is_one_line(tmp_path, monkeypatch):
    """TensorBoard's writer on a disk that is full (its folder cannot be made here; the writes fail through a seam):
    a CheckpointWriteError saying what to do, not TensorFlow's ResourceExhaustedError traceback."""
    from replica.training import metrics
    (tmp_path / "tensorboard").write_text("")   # a file where the writer's folder goes
    with pytest.raises(checkpoints.CheckpointWriteError, match="could not write TensorBoard's events in .*tensorboard"):
        metrics.Metrics().open_writer(tmp_path, is_chief=True)
    log = metrics.Metrics()
    log.open_writer(tmp_path / "run", is_chief=True)

    def disk_full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "run/tensorboard/events.out.tfevents; No space left on "
                                               "device\n\tFailed to flush 10 events")
    monkeypatch.setattr(tf.summary, "scalar", disk_full)
    with pytest.raises(checkpoints.CheckpointWriteError, match=r"events in .*run/tensorboard \(No space left on "
                                                               r"device\); free space and rerun the same command"):
        log.train_point(1, 0, 2.3, 0.9, 0.5, 0.01, 100.0)


class Killed(BaseException):
    """A kill, injected between two writes."""


@pytest.mark.slow
def test_history_and_checkpoint_agree_after_a_kill_between_their_writes(small_data, tmp_path, monkeypatch):
    real_write = checkpoints.write_files

    def killed_after_checkpoint(checkpoint, prefix):
        real_write(checkpoint, prefix)
        if prefix.endswith("ckpt-4"):
            raise Killed
    monkeypatch.setattr(checkpoints, "write_files", killed_after_checkpoint)
    with pytest.raises(Killed):
        trainer(small_data, tmp_path, epochs=2, checkpoint_every=2).train()
    monkeypatch.setattr(checkpoints, "write_files", real_write)
    trainer(small_data, tmp_path, epochs=2, checkpoint_every=2).train()
    steps = [h["step"] for h in json.loads((tmp_path / "history.json").read_text())["train"]]
    assert steps == list(range(1, 9))


def test_a_forced_stop_before_any_checkpoint_says_what_is_true(small_data, tmp_path):
    t = trainer(small_data, tmp_path, epochs=1)

    def two_ctrl_c(*args):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
    t._train_step = two_ctrl_c
    with pytest.raises(Interrupted, match="no checkpoint had been written yet: rerun the same command to "
                                                "start again"):
        t.train()


# --- flags ------------------------------------------------------------------------------------------------------
BAD_SETTINGS = {"gpus": "", "momentum": 2.0, "max_steps": -1, "train_limit": -5, "num_classes": 0, "eval_limit": -1,
                "weight_decay": -1.0, "workers": 0, "input_size": 100, "lr_drop_factor": 1.0, "dropout": 1.0,
                "lr_drop_epochs": ("ten",), "precision": "float8", "seed": -1, "eval_only": True}


def test_every_bad_setting_is_named_before_any_work():
    """replica.config.problems: each bad value is named by its flag, first; a good configuration has none."""
    from replica import config
    for name, value in BAD_SETTINGS.items():
        problems = config.problems(config.from_values({name: value}))
        assert problems and problems[0].startswith(f"--{name}"), (name, problems)
    assert config.problems(config.from_values({"towers": "merged"})) == []
    assert config.problems(config.from_values({"towers": "merged", "gpus": "0,1"}))[0].startswith(
        "--towers=merged runs on at most 1 device(s)")
    assert "names a device twice" in config.problems(config.from_values({"gpus": "1,1"}))[0]
    assert config.problems(config.from_values({"summary": True, "input_size": 224})) == []   # the net at 224 + 3
    assert config.problems(config.Config()) == []
    for name in ("learning_rate", "weight_decay", "lr_drop_factor", "momentum", "dropout", "positive_bias"):
        for value in (math.inf, math.nan):   # absl's float flags take "inf" and "nan"
            assert config.problems(config.from_values({name: value}))[0].startswith(f"--{name}="), (name, value)


def cli(*args):
    return subprocess.run([sys.executable, "run_experiment.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--no_such_flag=1"], "Unknown command line flag"),
    (["--lrn=foo"], "--lrn"),
    (["--momentum=2"], "--momentum=2 must be in [0, 1)"),
    (["--dataset=imagenet_folder", "--input_size=100"], "--input_size=100 does not fit"),
    (["--num_classes=5"], "has 10 classes"),
    (["--eval_only", "--checkpoint={tmp}/nothing"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    run_dir = tmp_path / "run"
    result = cli(f"--run_dir={run_dir}", *[a.format(tmp=tmp_path) for a in args])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not run_dir.exists()


def test_blow_up_record_choice():
    records = [{"step": 2, "loss": 2.2}, {"step": 4, "loss": 1.9}, {"step": 6, "loss": 2.5},
               {"step": 8, "loss": 3.1}, {"step": 10, "loss": float("nan")}]
    assert checkpoints.last_before_blow_up(records, 10)["step"] == 6   # 2.5 < 1.5 x 1.9; 3.1 is not
    assert checkpoints.last_before_blow_up([{"step": 2, "loss": 5 * math.log(10)}], 10) is None


@pytest.mark.slow
def test_a_blow_up_before_any_sound_checkpoint_restarts_at_a_lower_rate_once(small_data, tmp_path):
    trainer(small_data, tmp_path, epochs=1, max_steps=2, checkpoint_every=2).train()
    (tmp_path / "checkpoints" / "diverged.json").write_text(json.dumps({"step": 3, "learning_rate": 0.01,
                                                                         "resume_from": None}))
    _, step = restored_step(tmp_path, small_data, epochs=1, learning_rate=0.001)
    assert step == 0 and saved_steps(tmp_path) == [] and not (tmp_path / "checkpoints" / "diverged.json").exists()
    assert (tmp_path / "checkpoints" / "diverged" / "ckpt-2.index").exists()
