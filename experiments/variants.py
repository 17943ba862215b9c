"""The one runner behind the ablation experiments: train variants of a net on CIFAR-10 under the same recipe and
budget, over several seeds, and report test error (mean and spread) beside the paper's claim.

An experiment script is a spec: its variants (keyword arguments of `replica.build_model` and of
`input_pipeline.load_data`), the paper's numbers, and its budget arithmetic. `--quick` trains each variant for a
few steps on the shipped slice (the tests run it); the default mode is sized by the spec to about an hour here.
"""
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_bool("quick", False, "A few steps per variant on the shipped slice (checks the script end to end).")
flags.DEFINE_integer("seeds", None, "Seeds per variant (default: the spec's).")
flags.DEFINE_integer("epochs", None, "Epochs per run (default: the spec's).")
flags.DEFINE_integer("train_limit", None, "Training images (default: the spec's).")
flags.DEFINE_string("data_dir", "../shared/data/cifar-10-batches-py", "CIFAR-10 (full) for the default mode.")
flags.DEFINE_string("out_dir", None, "Where to write (default experiments/results).")
FLAGS = flags.FLAGS


def build_variant(variant, devices):
    """The variant's net: `four_layer` options give the cuda-convnet four-layer net (replica.four_layer), otherwise
    the towers / one-GPU / merged net with the variant's `model` options in the CIFAR-10 geometry."""
    import replica
    from replica import four_layer
    if "four_layer" in variant:
        return four_layer.build_four_layer_net(**variant["four_layer"])
    towers = variant.get("towers", 2)
    return replica.build_model(towers, num_classes=10, input_size=32,
                               devices=devices if towers == 2 else [devices[0]],
                               **{"positive_bias": 0.1, **variant.get("model", {})})


def run_variant(variant, seed, devices, quick, epochs, train_limit):
    """Train one variant with one seed; return its results (replica.train's results.json content, plus
    `run_dir`, where history.json holds the curves)."""
    from replica import input_pipeline, train
    train.set_determinism(seed, False)
    data = input_pipeline.load_data("cifar10", None if quick else FLAGS.data_dir,
                                    train_limit=512 if quick else train_limit, eval_limit=100 if quick else None,
                                    **variant.get("data", {}))
    model = build_variant(variant, devices)
    config = train.TrainConfig(**{
        "batch_size": 32 if quick else 128, "epochs": 1 if quick else epochs, "max_steps": 4 if quick else 0,
        "seed": seed, "log_every": 2 if quick else 10, "eval_limit": 64 if quick else 2000,
        "final_ten_crop": variant.get("ten_crop", False), **variant.get("recipe", {})})
    run_dir = tempfile.mkdtemp(prefix="variant-")
    start = time.time()
    results = train.Trainer(model, data, run_dir, config).train()
    results["wall_seconds"] = time.time() - start
    results["run_dir"] = run_dir
    return results


def summarise(values):
    import numpy as np
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def run_spec(spec):
    """Run every variant of `spec` over the seeds; write the table; return its rows."""
    import replica
    from experiments import report
    devices = replica.split_cpu(2)
    seeds = 1 if FLAGS.quick else (FLAGS.seeds or spec["seeds"])
    epochs = FLAGS.epochs or spec["epochs"]
    train_limit = FLAGS.train_limit or spec["train_limit"]
    rows = []
    for name, variant in spec["variants"].items():
        runs = [run_variant(variant, seed, devices, FLAGS.quick, epochs, train_limit) for seed in range(seeds)]
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
    scale = ("--quick: 4 steps per variant on 512 images of the shipped slice, 100 test images; the numbers only "
             "show that the script runs" if FLAGS.quick else f"{train_limit} CIFAR-10 training images, {epochs} epochs, batch 128, "
             f"{seeds} seed(s), test error on the 10,000 test images")
    notes = [scale] + list(spec.get("notes", ()))
    notes.append(noise_verdict(rows, spec))
    report.write_table(spec["name"], spec["title"], rows, columns, notes=notes, out_dir=FLAGS.out_dir)
    return rows


def noise_verdict(rows, spec):
    """Whether each compared pair (the spec's `pairs`, else the first two variants) differs by more than twice
    its seed spread: never claim what the numbers do not show."""
    key = next(iter(spec.get("metrics", DEFAULT_METRICS)))
    by_name = {row["variant"]: row for row in rows}
    pairs = spec.get("pairs") or ([(rows[0]["variant"], rows[1]["variant"])] if len(rows) > 1 else [])
    return "; ".join(pair_verdict(by_name[a], by_name[b], key) for a, b in pairs) or "no comparison"


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


def main_for(spec):
    app.run(lambda argv: run_spec(spec) and 0)
