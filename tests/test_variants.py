"""The runner behind the claims (experiments/variants.py): run folders, reuse and records, curves, the paper-sized
commands, and the same command shared between processes."""
import contextlib
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, float32_where_bfloat16_is_emulated, run_script


def test_learning_curves_are_each_variants_mean_over_seeds_and_drawn(tmp_path):
    """The architecture regime's figure: each variant's train and validation error per epoch, averaged over its
    seeds (to the epochs every seed has), drawn into <name>.png; no figure when no epoch was trained."""
    from experiments import variants

    def run(name, errors):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "history.json").write_text(json.dumps(
            {"epochs": [{"train_top1_error": e, "val_top1_error": e + 0.1} for e in errors]}))
        return {"run_dir": str(folder)}
    runs_of = {"a": [run("a0", [0.8, 0.6, 0.4]), run("a1", [0.6, 0.4])], "b": [run("b0", [0.9, 0.7])]}
    series = variants.curve_series(runs_of)
    assert series["a: train (batches)"] == ([1, 2], [0.7, 0.5])
    assert series["b: validation"][1] == pytest.approx([1.0, 0.8])
    notes = variants.learning_curves({"name": "arch"}, runs_of, tmp_path)
    assert (tmp_path / "arch.png").stat().st_size > 0 and "arch.png" in notes[0]
    assert variants.learning_curves({"name": "none"}, {"c": [run("c0", [])]}, tmp_path) == [
        "no whole epoch was trained: no curves"] and not (tmp_path / "none.png").exists()


def test_runs_share_a_folder_only_when_net_data_recipe_and_seed_all_match():
    from experiments import variants
    from replica.training.recipe import TrainConfig
    config = TrainConfig(epochs=3, seed=0)
    data = {"train_limit": 10000}
    folder = lambda variant, config=config: variants.run_folder("r", variants.net_arguments(variant), data, config)[0]
    baseline = folder({"towers": 2})
    assert folder({"model": {"lrn": "paper", "pooling": "overlapping", "dropout_rate": 0.5}}) == baseline
    assert folder({"model": {"lrn": "none"}}) != baseline
    assert folder({"towers": 1}) != baseline
    assert folder({"towers": 2}, TrainConfig(epochs=3, seed=1)) != baseline


def test_a_recorded_run_is_reused_for_its_results_but_not_where_its_weights_are_needed(tmp_path, monkeypatch):
    """A committed regime's finished run is kept in the repository (results and curves, no weights): another
    machine reuses it for a table, but a script that reads the trained weights finds no run to reuse and trains."""
    from experiments import variants
    monkeypatch.setattr(variants, "RECORDS", tmp_path / "records")
    run_dir = tmp_path / "runs" / "0123456789abcdef"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "history.json").write_text(json.dumps({"epochs": [{"train_top1_error": 0.5}]}))
    (run_dir / "variant.json").write_text(json.dumps({"results": {"test_top1_error": 0.25, "made_by": "x"}}))
    variants.keep_record(run_dir)
    record = tmp_path / "records" / run_dir.name
    assert sorted(p.name for p in record.iterdir()) == ["history.json", "variant.json"]
    assert variants.finished_run(run_dir, needs_weights=True)["run_dir"] == str(run_dir)   # the folder first
    elsewhere = tmp_path / "another-machine" / run_dir.name
    reused = variants.finished_run(elsewhere, needs_weights=False)
    assert reused["run_dir"] == str(record) and reused["test_top1_error"] == 0.25 and reused["reused"]
    assert variants.epoch_curve(reused, "train_top1_error") == [0.5]
    assert variants.finished_run(elsewhere, needs_weights=True) is None
    monkeypatch.setattr(variants.report, "REPO", tmp_path / "repo")
    inside = {"run_dir": str(tmp_path / "repo" / "experiments" / "results" / "runs" / "ab"), "made_by": "y"}
    assert "reused the finished run experiments/results/runs/ab (" in variants.reused_notes([("a", 0, inside)])[0]
    outside = {**reused, "run_dir": str(run_dir)}
    assert f"reused the finished run {run_dir} (" in variants.reused_notes([("a", 0, outside)])[0]
    from replica.training.runs import RunError   # a damaged record or run file: one line saying how to get it back
    (record / "history.json").write_text('{"epochs": [')
    with pytest.raises(RunError, match=f"history.json is not readable .*; git checkout -- {record} restores"):
        variants.epoch_curve(reused, "train_top1_error")
    (run_dir / "variant.json").write_text("")
    with pytest.raises(RunError, match=f"variant.json is not readable .*; delete {run_dir} to train this run again"):
        variants.finished_run(run_dir, needs_weights=True)


def test_a_run_names_the_commit_of_the_code_that_made_it(tmp_path, monkeypatch):
    from experiments import report
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    assert report.code_version().split()[0] == head.stdout.strip()
    changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", "*.py"],
                             capture_output=True, text=True).stdout.strip()
    assert report.code_version().endswith(" + changes") == bool(changed)
    monkeypatch.setattr(report, "REPO", tmp_path / "not-a-checkout")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert report.code_version() is None


@pytest.mark.slow
def test_dropout_draws_its_curves_times_convergence_and_its_runs_are_reused(tmp_path):
    """Default-mode bookkeeping on a tiny budget, two whole epochs per net so that there are curves: one variant's
    runs alone (--variants) write no table; then all of them train only the other and write the figure and the
    iterations note; then the same command again trains nothing and reports the same numbers."""
    budget = ["--train_limit=128", "--epochs=2", "--seeds=1", "--data_dir=", f"--runs_dir={tmp_path / 'runs'}",
              "--validation_images=256", *float32_where_bfloat16_is_emulated()]
    alone = run_script("dropout", *budget, "--variants=no dropout", f"--out_dir={tmp_path / 'first'}")
    assert "the table waits for every variant" in alone.stdout and not (tmp_path / "first").exists()
    assert len(list((tmp_path / "runs").iterdir())) == 1
    run_script("dropout", *budget, f"--out_dir={tmp_path / 'first'}")
    first = json.loads((tmp_path / "first" / "dropout.json").read_text())
    assert sum("validation minus train error at the last epoch" in n for n in first["notes"]) == 2
    assert any(n.startswith("epochs to reach") and "dropout 0.5 " in n for n in first["notes"])
    assert (tmp_path / "first" / "dropout.png").stat().st_size > 10_000
    second = run_script("dropout", *budget, f"--out_dir={tmp_path / 'second'}")
    assert second.stdout.count("reusing ") == 2 and len(list((tmp_path / "runs").iterdir())) == 2
    again = json.loads((tmp_path / "second" / "dropout.json").read_text())
    assert again["rows"] == first["rows"]
    assert sum("reused the finished run" in note for note in again["notes"]) == 2


def test_a_variant_the_script_does_not_have_is_a_one_line_error():
    result = subprocess.run([sys.executable, "experiments/precision.py", "--variants=float32,bfloat16"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --variants: no variant 'bfloat16' here; this script's variants are "
                                     "'float32', 'mixed_bfloat16'")


def test_the_paper_sized_commands_carry_each_variants_settings():
    from experiments import augmentation, drop_layer, variants
    commands = variants.full_scale_commands(augmentation.SPEC, "/data/ilsvrc")
    assert len(commands) == 3 * augmentation.SPEC["seeds"]
    no_augment = [c for c in commands if "--noaugment" in c]
    pca = [c for c in commands if "--pca_colour" in c]
    assert len(no_augment) == len(pca) == augmentation.SPEC["seeds"]
    assert all("--dataset=imagenet_folder" in c and "--data_dir=/data/ilsvrc" in c for c in commands)
    assert sum("--drop_layer=conv3" in c for c in variants.full_scale_commands(drop_layer.SPEC, "x")) == 3
    assert len({c[-1] for c in commands}) == len(commands)   # a run folder each
    from experiments import conv1_kernels, ten_crop, towers_comparison
    towers = variants.full_scale_commands(towers_comparison.SPEC, "x")
    assert all("--pca_colour" in c and not any("precision" in a for a in c) for c in towers)   # the paper's recipe
    assert variants.full_scale_commands(ten_crop.SPEC, "x") == variants.full_scale_commands(conv1_kernels.SPEC, "x")


@contextlib.contextmanager
def parsed_flags(*argv):
    """The scripts' flags parsed from `argv`, as at a script's start, and unparsed again after."""
    from absl import flags
    flags.FLAGS(["script", *argv])
    try:
        yield
    finally:
        flags.FLAGS.unparse_flags()


def test_a_run_another_process_trains_is_skipped_then_looked_at_again(tmp_path, monkeypatch, capsys):
    """The same command in two processes sharing --runs_dir splits the runs: a run whose folder another process
    holds is skipped without loading anything (and --status names that process), looked at again once this
    process has been through the rest, and the table waits while it is still the other's."""
    import replica
    from experiments import drop_layer, variants
    from replica.training import runs
    monkeypatch.setattr(variants, "RECORDS", tmp_path / "records")   # not the repository's finished runs
    with parsed_flags(f"--runs_dir={tmp_path / 'runs'}"):
        variant = variants.with_spec_defaults(drop_layer.SPEC)["all five conv layers"]
        settings = variants.run_settings(variant, 0, False, 30, 10000, drop_layer.SPEC)
        folder, _ = variants.run_folder(str(tmp_path / "runs"), variants.net_arguments(variant), *settings)
        holder = subprocess.Popen([sys.executable, "-c", "import time; from replica.training import runs; "
                                   f"runs.lock({str(folder)!r}); print('held', flush=True); time.sleep(60)"],
                                  cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            assert variants.run_variant(variant, 0, None, False, 30, 10000, drop_layer.SPEC, skip_held=True) is None
            assert f"{folder} is being trained by process {holder.pid}" in capsys.readouterr().out
            with pytest.raises(runs.RunError, match=f"being trained by process {holder.pid}.*rerun this command"):
                variants.run_variant(variant, 0, None, False, 30, 10000, drop_layer.SPEC)   # a script that needs it
            variants.print_status(drop_layer.SPEC)   # --status
            status = capsys.readouterr().out.splitlines()
            assert status[0].startswith(f"all five conv layers, seed 0: being trained by process {holder.pid} ")
            assert status[0].endswith("(checkpoint at step 0 of 2,340)")   # 30 epochs of 10,000 images
            assert status[1] == "without conv3, seed 0: not started" and status[-1] == "0 of 9 runs finished"
        finally:
            holder.kill()
            holder.wait()
        variants.print_status(drop_layer.SPEC)
        assert capsys.readouterr().out.startswith("all five conv layers, seed 0: interrupted at step 0 of 2,340\n")

        visits = []

        def run_variant(variant, seed, *args, skip_held):   # seed 1 of the one-GPU net stays another process's
            assert skip_held
            visits.append((variant["towers"], seed))
            return None if (variant["towers"], seed) == (1, 1) else {"test_top1_error": 0.5}
        monkeypatch.setattr(variants, "run_variant", run_variant)
        monkeypatch.setattr(replica, "split_cpu", lambda n: [None] * n)
        spec = {"name": "two", "seeds": 2, "epochs": 1, "train_limit": 512,
                "variants": {"towers": {"towers": 2}, "one-GPU net": {"towers": 1}}}
        assert variants.run_spec(spec) == []
    assert visits == [(2, 0), (1, 0), (2, 1), (1, 1), (1, 1)]
    assert "1 run(s) are being trained by other processes: the table waits" in capsys.readouterr().out
