"""The one runner behind the ablation experiments: train variants of a net on CIFAR-10 under the same recipe and
budget, over several seeds, and report test error (mean and spread) beside the paper's claim.

An experiment script is a spec: its variants (keyword arguments of `replica.build_model` and of
`input_pipeline.load_data`), the paper's numbers, and its budget arithmetic. `--quick` trains each variant for a
few steps on the shipped slice (the tests run it); the default mode is sized by the spec to about an hour here.

Default-mode runs live in `--runs_dir`, one folder per (net, data, recipe, seed), named by a hash of all three with
every default filled in. A finished run there is reused, so the two-tower baseline that most ablations share is
trained once, not once per script; an interrupted one resumes from its checkpoint. The table names every reused
run and the command that made it. A finished run of a committed regime is also recorded in experiments/results/runs
(its results and curves, not its weights), where the repository keeps it: on another machine a claim's tables are
made again from the records, and an unfinished claim trains only its missing runs. Scripts that read the trained
weights (conv1_kernels, retrieval: spec key `needs_weights`) reuse only run folders that hold them. The same
command in several processes sharing `--runs_dir` splits the runs between them (each run's folder is locked by the
process training it); `--status` prints where each run stands.
"""
import dataclasses
import datetime
import hashlib
import inspect
import json
import os
import pathlib
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)
from replica import choices  # noqa: E402
from replica.errors import UserError, run_main  # noqa: E402

flags.DEFINE_bool("quick", False, "A few steps per variant on the shipped slice (checks the script end to end).")
flags.DEFINE_integer("seeds", None, "Seeds per variant (default: the spec's).", lower_bound=1)
flags.DEFINE_integer("epochs", None, "Epochs per run (default: the spec's).", lower_bound=1)
flags.DEFINE_integer("train_limit", None, "Training images (default: the spec's).", lower_bound=1)
flags.DEFINE_integer("validation_images", None, "CIFAR-10 training images held out for validation (default: the "
                     "spec's).", lower_bound=0)
flags.DEFINE_enum("scale", "default", ["default", "full"], "full: the paper-sized test (ILSVRC-2012 at 227, 90 "
                  "epochs, the paper's schedule): print its commands and cost; with --imagenet_dir, run them.")
flags.DEFINE_string("imagenet_dir", None, "With --scale=full: ILSVRC-2012 (any layout replica reads) to run on.")
flags.DEFINE_enum("precision", None, choices.PRECISIONS, "Every variant in this precision (default: the spec's).")
flags.DEFINE_string("data_dir", "../shared/data/cifar-10-batches-py", "CIFAR-10 (full) for the default mode.")
flags.DEFINE_list("variants", None, "Train only these variants' runs (names as in the table), e.g. a claim's "
                  "float32 runs on a CPU without bfloat16 units; the table and the claim wait for every variant.")
flags.DEFINE_bool("status", False, "Train nothing: print where each run of the script's regime stands (finished, "
                  "being trained and by which process, interrupted at a step, not started) in --runs_dir.")
flags.DEFINE_string("runs_dir", "runs/variants", "Run folders of the default mode: a finished run there with the "
                    "same net, data, recipe and seed is reused, an interrupted one resumes. Empty: always train "
                    "afresh in temporary folders.")
FLAGS = flags.FLAGS


def net_arguments(variant):
    """Every argument of the variant's net builder, defaults filled in: `four_layer` options give the cuda-convnet
    four-layer net (replica.net.four_layer), otherwise the towers / one-GPU / merged net in the CIFAR-10 geometry."""
    import replica
    from replica.net import four_layer
    if "four_layer" in variant:
        return "four_layer", _all_arguments(four_layer.build_four_layer_net, **variant["four_layer"])
    arguments = _all_arguments(replica.build_model, variant.get("towers", 2),
                               **{"num_classes": 10, "input_size": 32, "positive_bias": 0.1, **variant.get("model", {})})
    del arguments["devices"], arguments["name"]
    return "towers", arguments


def _all_arguments(function, *args, **kwargs):
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def build_variant(variant, devices):
    """The variant's net, its variables created on `devices` (the first only, for a single-device net)."""
    import replica
    from replica.net import four_layer
    kind, arguments = net_arguments(variant)
    if kind == "four_layer":
        return four_layer.build_four_layer_net(**arguments)
    single = arguments["towers"] != 2
    return replica.build_model(**arguments, devices=[devices[0]] if single else devices)


def trained_model(results, variant, devices):
    """The variant's net with the weights of its trained run (run_variant's results)."""
    import tensorflow as tf
    model = build_variant(variant, devices)
    checkpoint = tf.train.latest_checkpoint(str(pathlib.Path(results["run_dir"]) / "checkpoints"))
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model


RECORDS = report.RESULTS / "runs"   # the committed regimes' finished runs, kept in the repository (keep_record)
BOOKKEEPING = ("checkpoint_every", "keep_checkpoints")   # TrainConfig fields that do not change a run's result


def run_folder(runs_dir, net, data_arguments, config):
    """The folder of one default-mode run: a hash of everything that decides its result."""
    recipe = {"net": net, "data": data_arguments,
              "config": {k: v for k, v in dataclasses.asdict(config).items() if k not in BOOKKEEPING}}
    recipe = json.dumps(recipe, sort_keys=True, default=str)
    return pathlib.Path(runs_dir) / hashlib.sha1(recipe.encode()).hexdigest()[:16], recipe


def run_settings(variant, seed, quick, epochs, train_limit, spec):
    """One run's load_data arguments and TrainConfig (with run_folder, what decides its result)."""
    from replica.inputs import input_pipeline
    from replica.training.recipe import TrainConfig
    data_arguments = _all_arguments(input_pipeline.load_data, **data_settings(variant, spec, quick, train_limit))
    photos = data_arguments["dataset"] != "cifar10"
    batch_size = (8 if photos else 32) if quick else 128
    steps_per_epoch = (512 if quick else train_limit or 50000) // batch_size
    config = TrainConfig(**{
        "batch_size": batch_size, "epochs": 1 if quick else epochs, "max_steps": 4 if quick else 0, "seed": seed,
        "log_every": max(1, min(2 if quick else 10, steps_per_epoch)),   # every epoch logs a training error
        "eval_limit": 64 if quick else 2000, "keep_checkpoints": 1,   # the last: enough to resume and to reuse
        "final_ten_crop": variant.get("ten_crop", False),
        **({} if quick else spec.get("recipe", {})), **variant.get("recipe", {})})
    return data_arguments, config


def run_variant(variant, seed, devices, quick, epochs, train_limit, spec=None, skip_held=False):
    """Train one variant with one seed (or reuse its finished run); return its results (replica.training.train's
    results.json content, plus `run_dir`, where history.json holds the curves, `wall_seconds` and `made_by`). When
    another process is training that run (its folder's lock): None with `skip_held`, else a RunError."""
    from replica.inputs import input_pipeline
    from replica.net import speed_forms
    from replica.training import runs, train
    from replica.training.step import set_determinism
    spec = spec or {}
    data_arguments, config = run_settings(variant, seed, quick, epochs, train_limit, spec)
    if quick or not FLAGS.runs_dir:
        run_dir, recipe = pathlib.Path(report.scratch_dir("variant-")), None
    else:
        run_dir, recipe = run_folder(FLAGS.runs_dir, net_arguments(variant), data_arguments, config)
        finished = finished_run(run_dir, spec.get("needs_weights", False))
        if finished:
            return finished
        holder = runs.try_lock(run_dir)
        if holder and not skip_held:
            raise runs.RunError(f"{run_dir} is being trained by {holder}; rerun this command when it has finished")
        if holder:   # the same command in another process, sharing --runs_dir: that run is its
            print(f"{run_dir} is being trained by {holder}: going on to the next run", flush=True)
            return None
    set_determinism(seed, False)
    from replica.net import precision
    precision.configure(variant.get("model", {}).get("precision", "float32"))   # float32 that is float32, etc.
    data = input_pipeline.load_data(**data_arguments)
    start = time.time()
    with speed_forms.custom_gradients_released():   # the next variant's net does not keep this one's weights
        results = train.Trainer(build_variant(variant, devices), data, run_dir, config).train()
    results["wall_seconds"] = time.time() - start
    results["made_by"] = (f"`python {' '.join(sys.argv)}`, "
                          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
                          f"code {report.code_version() or 'outside git'}")
    if recipe is not None:
        runs.write_json_atomically(run_dir / "variant.json", {"recipe": json.loads(recipe), "results": results})
        if runs_the_committed_regime():
            keep_record(run_dir)
        runs.release(run_dir)
    results["run_dir"] = str(run_dir)
    return results


def finished_run(run_dir, needs_weights):
    """A finished run to reuse (run_variant's results), or None: its folder in --runs_dir, else its record in
    RECORDS when the script needs only its results and curves, not its weights (spec key `needs_weights`)."""
    folder = finished_folder(run_dir, needs_weights)
    if folder is None:
        return None
    results = run_file(folder, "variant.json")["results"]
    print(f"reusing {folder} (made by {results['made_by']})", flush=True)
    return {**results, "run_dir": str(folder), "reused": True}


def run_file(folder, name):
    """A finished run's variant.json or history.json; a damaged one is a one-line error saying how to get it back."""
    from replica.training import runs
    remedy = (f"git checkout -- {folder} restores this record" if folder.parent == RECORDS else
              f"delete {folder} to train this run again")
    return runs.read_json(pathlib.Path(folder) / name, remedy)


def finished_folder(run_dir, needs_weights):
    """Where the finished run of `run_dir` is (finished_run), or None."""
    for folder in (run_dir,) if needs_weights else (run_dir, RECORDS / run_dir.name):
        if (folder / "variant.json").is_file():
            return folder
    return None


def run_state(run_dir, needs_weights, steps):
    """Where one run stands, in words: finished (in its folder or as a record), being trained (by whom),
    interrupted at a checkpoint, or not started; `steps`: the run's whole length, when known."""
    from replica.training import checkpoints, runs
    finished = finished_folder(run_dir, needs_weights)
    if finished:
        return f"finished ({finished})"
    if not run_dir.is_dir():
        return "not started"
    holder = runs.try_lock(run_dir)
    runs.release(run_dir)
    found = checkpoints.complete(run_dir / "checkpoints")
    step = f"step {checkpoints.step_of(found[-1]) if found else 0:,}" + (f" of {steps:,}" if steps else "")
    return f"being trained by {holder} (checkpoint at {step})" if holder else f"interrupted at {step}"


def print_status(spec):
    """--status: each run of the regime (variant and seed) and where it stands (run_state)."""
    if FLAGS.quick or not FLAGS.runs_dir:
        raise UserError("--status reads the runs in --runs_dir: it needs one, and not --quick")
    specified = chosen_variants(with_spec_defaults(spec))
    seeds, epochs, train_limit = budget(spec)
    states = []
    for seed in range(seeds):
        for name, variant in specified.items():
            data_arguments, config = run_settings(variant, seed, False, epochs, train_limit, spec)
            run_dir, _ = run_folder(FLAGS.runs_dir, net_arguments(variant), data_arguments, config)
            steps = epochs * (train_limit // config.batch_size) if train_limit else None   # else: the folder's size
            states.append(run_state(run_dir, spec.get("needs_weights", False), steps))
            print(f"{name}, seed {seed}: {states[-1]}", flush=True)
    done = sum(state.startswith("finished") for state in states)
    print(f"{done} of {len(states)} runs finished", flush=True)


def keep_record(run_dir):
    """Copy a finished run of a committed regime (its variant.json and history.json: results and curves, ~10 KB, no
    weights) into RECORDS, where the repository keeps it."""
    record = RECORDS / run_dir.name
    record.mkdir(parents=True, exist_ok=True)
    for name in ("history.json", "variant.json"):   # variant.json last: it marks the record complete
        report.save(record / name, lambda tmp: shutil.copyfile(run_dir / name, tmp))


def data_settings(variant, spec, quick, train_limit):
    """load_data's arguments for a variant: CIFAR-10 (--data_dir; with --quick the shipped slice) unless the
    variant's `data` names an image folder (with --quick, 16 + 16 of its photos)."""
    data = {"dataset": "cifar10", "data_dir": None if quick else FLAGS.data_dir,
            "train_limit": 512 if quick else train_limit, "eval_limit": 100 if quick else None,
            **variant.get("data", {})}
    if data["dataset"] != "cifar10":
        del data["eval_limit"]   # an image folder's val/ is evaluated whole
        if quick:
            data["data_dir"], data["cache_dir"] = str(report.quick_image_folder(data["data_dir"])), report.scratch_dir()
    held = validation_images(spec)
    if held and not quick:
        data["validation_images"] = held
    return data


def epoch_curve(results, key):
    """One number per epoch of a run (`key` of history.json's epoch records: train_top1_error, val_top1_error)."""
    history = run_file(pathlib.Path(results["run_dir"]), "history.json")
    return [e[key] for e in history["epochs"]]


def mean_epoch_curve(runs, key):
    """The seeds' mean of `epoch_curve`, over the epochs every seed has."""
    import numpy as np
    curves = [epoch_curve(r, key) for r in runs]
    length = min(len(c) for c in curves)
    return [float(np.mean([c[k] for c in curves])) for k in range(length)]


def curve_series(runs_of):
    """{'<variant>: train (batches)' and '<variant>: validation': (epochs, mean error over seeds)} of every
    variant, for report.line_figure; empty when a variant trained no whole epoch."""
    series = {}
    for name, runs in runs_of.items():
        for label, key in (("train (batches)", "train_top1_error"), ("validation", "val_top1_error")):
            curve = mean_epoch_curve(runs, key)
            if not curve:
                return {}
            series[f"{name}: {label}"] = (list(range(1, len(curve) + 1)), curve)
    return series


def learning_curves(spec, runs_of, out_dir):
    """<name>.png: each variant's training and validation error per epoch, mean over seeds (a regime with
    `curves`: the claims judged on nets trained to the end of their schedule); returns the note naming it."""
    series = curve_series(runs_of)
    if not series:
        return ["no whole epoch was trained: no curves"]
    path = report.line_figure(spec["name"], series, "epoch", "top-1 error (mean over seeds)",
                              "Learning curves, every variant on the same schedule", out_dir=out_dir)
    return [f"learning curves (train and validation error per epoch, mean over seeds): {path.name}"]


def epochs_to(curve, target):
    """The (fractional) epoch at which a per-epoch error curve first reaches `target`, epoch k's error sitting at
    x = k + 1 and the curve starting from 1.0 at x = 0; None when it never does."""
    previous = 1.0
    for k, error in enumerate(curve):
        if error <= target:
            return k + (previous - target) / (previous - error) if previous > error else float(k + 1)
        previous = error
    return None


def summarise(values):
    import numpy as np
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def with_spec_defaults(spec):
    """The spec's variants, each with the spec's shared net settings (`model`, e.g. the precision) filled in."""
    shared = {**spec.get("model", {}), **({"precision": FLAGS.precision} if FLAGS.precision else {})}
    data = spec.get("data", {})
    return {name: variant if "four_layer" in variant else {
        **variant, "model": {**shared, **variant.get("model", {})},
        **({"data": {**data, **variant.get("data", {})}} if data or "data" in variant else {})}
        for name, variant in spec["variants"].items()}


def run_spec(spec):
    """Run every variant of `spec` over the seeds (seed by seed, so an interrupted set stays balanced); write the
    table, and the claim's verdict into claims.json when the spec tests one; return the table's rows. The same
    command in several processes sharing --runs_dir (on one machine or several) splits the runs: each skips the
    runs another is training, and looks at them again when it has trained the rest; the last to finish writes the
    table."""
    specified = chosen_variants(with_spec_defaults(spec))
    import replica
    devices = replica.split_cpu(2)
    seeds, epochs, train_limit = budget(spec)
    runs_of = {name: [None] * seeds for name in specified}
    for _ in range(2):   # the second pass: the runs other processes were training, finished by now or still theirs
        for seed in range(seeds):
            for name, variant in specified.items():
                if runs_of[name][seed] is None:
                    runs_of[name][seed] = run_variant(variant, seed, devices, FLAGS.quick, epochs, train_limit, spec,
                                                      skip_held=True)
    if len(specified) < len(spec["variants"]):
        print(f"trained {', '.join(specified)} only (--variants): the table waits for every variant", flush=True)
        return []
    elsewhere = sum(r is None for runs in runs_of.values() for r in runs)
    if elsewhere:
        print(f"{elsewhere} run(s) are being trained by other processes: the table waits for them (rerun this "
              "command once they have finished)", flush=True)
        return []
    reused = [(name, seed, r) for name, runs in runs_of.items() for seed, r in enumerate(runs) if r.get("reused")]
    rows = []
    for name, runs in runs_of.items():
        row = {"variant": name, "seeds": seeds}
        for key, pick in spec.get("metrics", DEFAULT_METRICS).items():
            mean, std = summarise([pick(r) for r in runs])
            row[key] = mean
            row[key + " sd"] = std
        row["paper"] = spec["paper"].get(name, "")
        rows.append(row)
        print(row, flush=True)
    columns = ["variant", "seeds"]
    for key in spec.get("metrics", DEFAULT_METRICS):
        columns += [key, key + " sd"]
    columns.append("paper")
    notes = [scale_note(spec, seeds, epochs, train_limit)] + list(spec.get("notes", ())) + reused_notes(reused)
    if len(rows) > 1:   # a one-variant spec (ten_crop) compares within its runs, in its analysis
        notes.append(noise_verdict(rows, spec))
    if spec.get("curves"):
        notes += learning_curves(spec, runs_of, FLAGS.out_dir)
    if "analysis" in spec:   # the spec's own figure and findings from the runs' curves
        notes += spec["analysis"](runs_of, FLAGS.out_dir)
    report.write_table(spec["name"], spec["title"], rows, columns, notes=notes, out_dir=FLAGS.out_dir)
    if runs_the_committed_regime():
        for claim in spec.get("claims", [spec["claim"]] if "claim" in spec else []):
            record_claim(spec, claim, runs_of, seeds, epochs, train_limit)
    return rows


def budget(spec):
    """(seeds, epochs, training images) of this command: the spec's regime unless a flag changes it; --quick, one
    seed."""
    seeds = 1 if FLAGS.quick else (FLAGS.seeds or spec["seeds"])
    return seeds, FLAGS.epochs or spec["epochs"], FLAGS.train_limit or spec["train_limit"]


def chosen_variants(specified):
    """The variants --variants names (all of them without it); an unknown name is a one-line error."""
    unknown = [name for name in FLAGS.variants or () if name not in specified]
    if unknown:
        raise UserError(f"--variants: no variant {', '.join(map(repr, unknown))} here; this script's variants are "
                        f"{', '.join(map(repr, specified))}")
    return {name: variant for name, variant in specified.items() if not FLAGS.variants or name in FLAGS.variants}


def runs_the_committed_regime():
    """Whether this run is the regime committed in its script: no exploration flag (--seeds, --epochs,
    --train_limit, --precision, --validation_images), not --quick, not --out_dir. Only such a run writes its claim
    into claims.json."""
    return (FLAGS.seeds is None and FLAGS.epochs is None and FLAGS.train_limit is None and not FLAGS.precision
            and FLAGS.validation_images is None and not FLAGS.quick and not FLAGS.out_dir)


def validation_images(spec):
    """CIFAR-10 training images held out for validation: --validation_images, else the spec's (0: none)."""
    return spec.get("validation_images", 0) if FLAGS.validation_images is None else FLAGS.validation_images


def scale_note(spec, seeds, epochs, train_limit):
    if FLAGS.quick:
        return ("--quick: 4 steps per variant on 512 images of the shipped slice, 100 test images; the numbers only "
                "show that the script runs")
    held = validation_images(spec)
    held_out = (f", {held:,} more held out as the validation split the curves and any plateau rule watch"
                if held else "")
    schedule = spec.get("recipe", {}).get("lr_drop_epochs")
    schedule = (f"; learning rate divided by 10 after epochs {', '.join(map(str, schedule))} for every variant"
                if schedule else "")
    data = spec.get("data", {})
    if data.get("dataset", "cifar10") != "cifar10":
        size = spec.get("model", {}).get("input_size", 32)
        return (f"{'the first ' + format(train_limit, ',') if train_limit else 'all'} training photos of "
                f"{data['data_dir']} at {size}x{size}, {epochs} epochs, batch 128{schedule}, {seeds} seed(s), "
                "error on its val/ photos")
    return (f"{train_limit:,} CIFAR-10 training images{held_out}, {epochs} epochs, batch 128{schedule}, "
            f"{seeds} seed(s), test error on the 10,000 test images")


def record_claim(spec, claim, runs_of, seeds, epochs, train_limit):
    """One claim of the spec judged on its runs (experiments/claims.py), written into claims.json with its regime
    under the claim's `key` (default: the spec's name)."""
    from experiments import claims
    pick = claim.get("metric", lambda r: r["final"]["centre_top1_error"])
    values = [{seed: claim.get(f"{side}_metric", pick)(r) for seed, r in enumerate(runs_of[claim[side]])}
              for side in ("baseline", "variant")]
    entry = claims.judge(claim, *values)
    regime = {}
    for name in (claim["baseline"], claim["variant"]):
        runs = runs_of[name]
        regime[name] = {
            "images_seen": runs[0]["steps"] * runs[0]["config"]["batch_size"],
            "epochs": epochs, "training_images": train_limit,
            "final_train_top1_error": summarise([r["history_last_train_top1"] for r in runs])[0],
            "final_validation_top1_error": summarise([epoch_curve(r, "val_top1_error")[-1] for r in runs])[0],
            "learning_rate_drops_after_epochs": [drops_of(r) for r in runs]}
    entry.update({"order": claim.get("order", 99), "claim": claim["text"], "paper": claim["paper"],
                  "paper_effect": claim.get("paper_effect"), "expected_sign": claim["expected_sign"],
                  "regime": regime, "command": report.command_line(),
                  "result_files": [f"experiments/results/{spec['name']}.md",
                                   f"experiments/results/{spec['name']}.json"] + claim.get("more_files", [])
                                  + ([f"experiments/results/{spec['name']}.png"] if spec.get("curves") else []),
                  "machine": report.machine(), "seeds": list(range(seeds))})
    claims.record(claim.get("key", spec["name"]), entry)
    claims.write_readme_table()


def drops_of(results):
    """The epochs (1-based) after which a run's learning rate fell, read from its per-epoch history."""
    history = run_file(pathlib.Path(results["run_dir"]), "history.json")
    rates = [e.get("learning_rate") for e in history["epochs"]]
    return [k for k in range(1, len(rates)) if rates[k] is not None and rates[k - 1] is not None
            and rates[k] < rates[k - 1]]


def reused_notes(reused):
    """One note per reused run: which row and seed, its folder, and the command that trained it."""
    root = report.REPO   # a record of the repository's is named relative to it
    folders = [pathlib.Path(r["run_dir"]) for _, _, r in reused]
    folders = [path.relative_to(root) if path.is_relative_to(root) else path for path in folders]
    return [f"{name}, seed {seed}: reused the finished run {path} (same net, data, recipe and seed), "
            f"trained by {r['made_by']}" for (name, seed, r), path in zip(reused, folders)]


def noise_verdict(rows, spec):
    """Whether each compared pair (the spec's `pairs`, else the first two variants) differs by more than twice
    its seed spread: never claim what the numbers do not show."""
    key = next(iter(spec.get("metrics", DEFAULT_METRICS)))
    by_name = {row["variant"]: row for row in rows}
    pairs = spec.get("pairs") or [(rows[0]["variant"], rows[1]["variant"])]
    return "; ".join(pair_verdict(by_name[a], by_name[b], key) for a, b in pairs)


def pair_verdict(a, b, key):
    if a[key] is None or b[key] is None:
        return f"{b['variant']} vs {a['variant']}: no comparison"
    spread = max(a[key + " sd"] or 0.0, b[key + " sd"] or 0.0)
    diff = b[key] - a[key]
    if not spread:
        return f"{b['variant']} minus {a['variant']}: {diff:+.4f} {key}; one seed, so the seed noise is unknown"
    within = abs(diff) <= 2 * spread
    return (f"{b['variant']} minus {a['variant']}: {diff:+.4f} {key} (seed sd up to {spread:.4f}): "
            + ("within seed noise: no difference shown" if within else "larger than twice the seed sd"))


DEFAULT_METRICS = {
    "test top-1 error": lambda r: r["final"]["centre_top1_error"],
    "test top-5 error": lambda r: r["final"]["centre_top5_error"],
    "train images/s": lambda r: r["train_images_per_second"],
}


# --- the paper-sized version ------------------------------------------------------------------------------------
FLAG_OF = {"towers": "towers", "lrn": "lrn", "pooling": "pooling", "activation": "activation",
           "dropout_rate": "dropout", "drop_layer": "drop_layer", "precision": "precision", "augment": "augment",
           "pca_colour_augment": "pca_colour"}
GPU_IMAGES_PER_SECOND = 10_000   # AlexNet training on one current GPU (tf_cnn_benchmarks: 2,987 on a P100)


def full_scale_name(spec):
    """The folder of the paper-sized runs under runs/full: the regime's, when scripts share its runs."""
    return spec.get("full_scale_name", spec["name"])


def full_scale_commands(spec, imagenet_dir):
    """The run_experiment.py command of each variant and seed on ILSVRC-2012 with the paper's recipe."""
    commands = []
    for name, variant in spec["variants"].items():
        if "four_layer" in variant:
            continue   # the four-layer net is a CIFAR-10 net
        # the paper's recipe (PCA colour noise on) with the variant's own settings; not the regime's precision or
        # its adaptations to small data
        settings = {"towers": variant.get("towers", 2), "pca_colour_augment": True, **variant.get("model", {}),
                    **variant.get("data", {})}
        flags_ = [f"--{FLAG_OF[k]}={v}" if not isinstance(v, bool) else f"--{'' if v else 'no'}{FLAG_OF[k]}"
                  for k, v in settings.items() if k in FLAG_OF]
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        for seed in range(spec["seeds"]):
            commands.append(["python", "run_experiment.py", "--dataset=imagenet_folder", f"--data_dir={imagenet_dir}",
                             *flags_, f"--seed={seed}", f"--run_dir=runs/full/{full_scale_name(spec)}/{slug}-seed{seed}"])
    return commands


def run_full_scale(spec):
    """--scale=full: the paper's test as the paper ran it, its cost on one modern GPU, and (with --imagenet_dir)
    the runs themselves, one after another; each resumes if interrupted."""
    import subprocess
    commands = full_scale_commands(spec, FLAGS.imagenet_dir or "/data/ilsvrc2012")
    images = 1_281_167 * 90   # ILSVRC-2012's training set, the paper's 90 epochs
    hours = images / GPU_IMAGES_PER_SECOND / 3600
    print(f"{spec['title']} at the paper's scale: {len(commands)} runs of 90 epochs of ILSVRC-2012 at 227x227 "
          f"({images / 1e6:.0f} M images, {images * 4.35e9 / 1e15:,.0f} PFLOP a run at 4.35 GFLOP a training image), "
          f"about {hours:.1f} h a run and {hours * len(commands):.0f} h in all on one GPU training AlexNet at "
          f"{GPU_IMAGES_PER_SECOND:,} images/s:")
    for command in commands:
        print("  " + " ".join(command))
    if not FLAGS.imagenet_dir:
        print("(add --imagenet_dir=DIR to run them)")
        return 0
    if not pathlib.Path(FLAGS.imagenet_dir).is_dir():
        raise UserError(f"--imagenet_dir={FLAGS.imagenet_dir} is not a folder; point it at ILSVRC-2012")
    for command in commands:   # written to run from the repository's root
        code = subprocess.run([sys.executable, *command[1:]], cwd=report.REPO).returncode
        if code:
            raise UserError(f"{' '.join(command)} ended with exit code {code} (its error is above); the runs "
                            "before it are kept and rerunning this command resumes")
    return 0


def main_for(spec):
    """Run an experiment script: its paper-sized commands with --scale=full, else its variants and table."""
    def main(argv):
        del argv
        if FLAGS.scale == "full":
            return run_full_scale(spec)
        if FLAGS.status:
            print_status(spec)
            return 0
        run_spec(spec)
        return 0
    run_main(main)
