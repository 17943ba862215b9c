"""Experiment 2 (paper 3.1, Fig. 1): ReLU vs tanh in the CIFAR-10 four-layer net, epochs to 25% training error.

The paper: with ReLUs the four-layer net (replica.net.four_layer) reaches 25% training error six times faster (in
epochs) than with tanh units; no regularisation, each learning rate chosen to train fastest.

Here: no weight decay, no dropout, no augmentation (the 32x32 images as they are), momentum 0.9, batch 128, a
constant learning rate. For each non-linearity the learning rate is chosen among --learning_rates by the training
error after --probe_epochs; then the net trains for up to --epochs with it. The training error of an epoch is the
mean over its batches as they were trained (what Fig. 1 plots), and the epochs to 25% are read off the curve by
linear interpolation.

  python experiments/relu_vs_tanh.py [--quick]

The regime (fixed before its results): all 50,000 training images, as the paper's Fig. 1; no augmentation; the
learning rate of each non-linearity chosen by the probes on seed 0, then seeds 0 and 1 trained for up to 15
epochs (ReLU) and 30 (tanh): with the paper's ratio of 6, ReLU's 25% comes within a few epochs and tanh's within
30 only if the ratio is under about 6 here too; a tanh curve that has not reached 25% gives a lower bound on the
ratio (its epochs run), which is how claims.json records it. Seeds: 2, paired; the claim is judged on the
difference of the epochs to 25% (tanh minus ReLU, expected positive) and the ratio is reported beside it.

Budget arithmetic: the net costs 34.7 M multiply-adds an image forward (conv1 4.9 M, conv2 26.2 M, local3 2.4 M,
local4 1.2 M), 0.21 GFLOP a training image; about 700 training images/s here, so an epoch of 50,000 is ~75 s with
its evaluation. Probes 4 x 2 epochs, runs (15 + 30) x 2 seeds: 98 epochs, about 2 h, over the 90 minutes the
other claims take because the paper's regime is the whole training set.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import choices, errors  # noqa: E402

from experiments import variants  # noqa: E402  (its flags: --quick, --seeds, --epochs, --train_limit, --out_dir)

flags.DEFINE_integer("probe_epochs", 1, "Epochs of each learning-rate probe.", lower_bound=1)
flags.DEFINE_list("learning_rates", ["0.005", "0.01", "0.02", "0.05"], "Learning rates tried for each net.")
flags.DEFINE_float("target", 0.25, "The training error whose epoch is compared (paper: 25%).", lower_bound=0,
                   upper_bound=1)
FLAGS = flags.FLAGS
EPOCHS = {"relu": 15, "tanh": 30}   # per non-linearity (--epochs sets both)
SEEDS, TRAIN_LIMIT = 2, 50000        # defaults of --seeds and --train_limit here

ACTIVATIONS = choices.ACTIVATIONS   # the pair Fig. 1 compares
PAPER_RATIO = 6.0


def no_regularisation(learning_rate, epochs):
    """The recipe of Fig. 1: no weight decay, a constant learning rate (no drops, no early end)."""
    return {"learning_rate": learning_rate, "weight_decay": 0.0, "lr_drops": 0, "lr_patience": 10 ** 6,
            "epochs": epochs, "final_ten_crop": False}


def train_curve(activation, learning_rate, epochs, seed=0):
    """(per-epoch training error, results) of the four-layer net with `activation` at `learning_rate`."""
    recipe = no_regularisation(learning_rate, epochs)
    if FLAGS.quick:   # whole epochs of 512 shipped images, so that there is a curve to read
        recipe["max_steps"] = 0
    variant = {"four_layer": {"activation": activation}, "data": {"augment": False}, "recipe": recipe}
    results = variants.run_variant(variant, seed, None, FLAGS.quick, epochs, FLAGS.train_limit or TRAIN_LIMIT)
    return variants.epoch_curve(results, "train_top1_error"), results


def choose_learning_rate(activation):
    """The learning rate whose probe run ends with the lowest training error (PAPER.md 5: 'each chosen for
    fastest training'), and every probe's error."""
    probes = {}
    for lr in map(float, FLAGS.learning_rates):
        curve, _ = train_curve(activation, lr, FLAGS.probe_epochs)
        probes[lr] = curve[-1] if curve and curve[-1] == curve[-1] else 1.0
    return min(probes, key=probes.get), probes


def main(argv):
    del argv
    from experiments import report
    if FLAGS.status:
        raise errors.UserError("--status: this script chooses its runs as it goes (each net's learning rate from "
                               "probe runs); its runs are the folders in --runs_dir")
    if FLAGS.scale == "full":
        print("Fig. 1 is the paper's CIFAR-10 experiment on all 50,000 training images: the default regime is its "
              "full scale")
    if FLAGS.quick:
        FLAGS.learning_rates, FLAGS.epochs = ["0.01", "0.05"], 2
    seeds = 1 if FLAGS.quick else (FLAGS.seeds or SEEDS)
    rows, series, reached = [], {}, {a: {} for a in ACTIVATIONS}
    for activation in ACTIVATIONS:
        lr, probes = choose_learning_rate(activation)
        epochs = FLAGS.epochs or EPOCHS[activation]
        for seed in range(seeds):
            curve, results = train_curve(activation, lr, epochs, seed)
            epoch = variants.epochs_to(curve, FLAGS.target)
            reached[activation][seed] = epoch if epoch is not None else float(len(curve))   # censored: a bound
            rows.append({"non-linearity": activation, "seed": seed, "learning rate (chosen)": lr,
                         "probes (lr: train error after probe)": ", ".join(f"{k:g}: {v:.3f}" for k, v in probes.items()),
                         f"epochs to {FLAGS.target:.0%} train error": epoch, "epochs run": len(curve),
                         "final train error": curve[-1] if curve else None,
                         "test error": results["final"]["centre_top1_error"], "wall seconds": results["wall_seconds"]})
            series[f"{activation}, seed {seed}"] = (list(range(1, len(curve) + 1)), curve)
            print(rows[-1], flush=True)
    notes = [("--quick: a few steps on the shipped slice; the numbers only show that the script runs" if FLAGS.quick
              else f"{FLAGS.train_limit or TRAIN_LIMIT:,} CIFAR-10 training images, batch 128, seeds 0-{seeds - 1}"),
             ratio_note(rows, reached)]
    report.write_table("relu_vs_tanh", "Fig. 1: ReLU vs tanh, CIFAR-10 four-layer net, epochs to 25% training error",
                       rows, list(rows[0]), notes=notes, out_dir=FLAGS.out_dir)
    report.line_figure("relu_vs_tanh", series, "epoch", "training error (mean over the epoch's batches)",
                       "Fig. 1 here: four-layer net on CIFAR-10", out_dir=FLAGS.out_dir,
                       hline=(FLAGS.target, f"{FLAGS.target:.0%}"))
    if variants.runs_the_committed_regime():
        record_claim(reached, rows)


def ratio_note(rows, reached):
    """tanh's epochs to the target over ReLU's, per seed; "at least" where tanh never reached it."""
    censored = {r["seed"] for r in rows if r["non-linearity"] == "tanh" and r[f"epochs to {FLAGS.target:.0%} train error"] is None}
    parts = [f"seed {s}: {'at least ' if s in censored else ''}{reached['tanh'][s] / reached['relu'][s]:.2f}"
             for s in reached["relu"] if reached["relu"][s]]
    return f"tanh / ReLU epochs to {FLAGS.target:.0%}: " + "; ".join(parts) + f" (paper: {PAPER_RATIO:g})"


def censored_label(rows):
    """What the table adds to tanh's name when a seed's curve never reached the target: its epochs are the epochs it
    ran, a lower bound, and so is the difference."""
    key = f"epochs to {FLAGS.target:.0%} train error"
    censored = [r for r in rows if r["non-linearity"] == "tanh" and r[key] is None]
    if not censored:
        return ""
    seeds = ", ".join(str(r["seed"]) for r in censored)
    return (f" (seed{'s' if len(censored) > 1 else ''} {seeds}: {FLAGS.target:.0%} not reached in "
            f"{censored[0]['epochs run']} epochs, counted as {censored[0]['epochs run']}: a lower bound)")


def record_claim(reached, rows):
    from experiments import claims, report
    claim = {"baseline": "relu", "variant": "tanh", "expected_sign": +1, "unit": "epochs",
             "variant_label": "tanh" + censored_label(rows)}
    entry = claims.judge(claim, reached["relu"], reached["tanh"])
    entry.update({"order": 2, "claim": "ReLU reaches 25% training error sooner than tanh (Fig. 1)",
                  "paper": "6x fewer epochs", "unit": "epochs", "ratio_note": ratio_note(rows, reached),
                  "regime": {"training_images": FLAGS.train_limit or TRAIN_LIMIT, "epochs": EPOCHS,
                             "final_train_top1_error": {r["non-linearity"] + f" seed {r['seed']}": r["final train error"]
                                                        for r in rows}},
                  "command": report.command_line(), "machine": report.machine(),
                  "result_files": ["experiments/results/relu_vs_tanh.md", "experiments/results/relu_vs_tanh.json",
                                   "experiments/results/relu_vs_tanh.png"]})
    claims.record("relu_vs_tanh", entry)
    claims.write_readme_table()


if __name__ == "__main__":
    errors.run_main(main)
