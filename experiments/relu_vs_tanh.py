"""Experiment 2 (paper 3.1, Fig. 1): ReLU vs tanh in the CIFAR-10 four-layer net, epochs to 25% training error.

The paper: with ReLUs the four-layer net (replica.four_layer) reaches 25% training error six times faster (in
epochs) than with tanh units; no regularisation, each learning rate chosen to train fastest.

Here: no weight decay, no dropout, no augmentation (the 32x32 images as they are), momentum 0.9, batch 128, a
constant learning rate. For each non-linearity the learning rate is chosen among --learning_rates by the training
error after --probe_epochs; then the net trains for up to --epochs with it. The training error of an epoch is the
mean over its batches as they were trained (what Fig. 1 plots), and the epochs to 25% are read off the curve by
linear interpolation.

  python experiments/relu_vs_tanh.py [--quick]

Budget arithmetic: the net costs 34.7 M multiply-adds an image forward (conv1 4.9 M, conv2 26.2 M, local3 2.4 M,
local4 1.2 M), 0.21 GFLOP a training image; measured here about 700 training images/s. Default: 10,000 training
images, 4 probe runs x 1 epoch and a run of up to 30 epochs per non-linearity = 2 x 34 epochs x 10,000 images =
680,000 images, about 17 min plus the evaluations. Training error on a 10,000-image subset falls faster per epoch
than on the full 50,000, so only the ratio is comparable with the paper's.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from experiments import variants  # noqa: E402  (its flags: --quick, --epochs, --train_limit, --data_dir, --out_dir)

flags.DEFINE_integer("probe_epochs", 1, "Epochs of each learning-rate probe.")
flags.DEFINE_list("learning_rates", ["0.005", "0.01", "0.02", "0.05"], "Learning rates tried for each net.")
flags.DEFINE_float("target", 0.25, "The training error whose epoch is compared (paper: 25%).")
flags.DEFINE_integer("seed", 0, "Seed of every run.")
FLAGS = flags.FLAGS
EPOCHS, TRAIN_LIMIT = 30, 10000   # defaults of --epochs and --train_limit here

ACTIVATIONS = ("relu", "tanh")
PAPER_RATIO = 6.0


def no_regularisation(learning_rate, epochs):
    """The recipe of Fig. 1: no weight decay, a constant learning rate (no drops, no early end)."""
    return {"learning_rate": learning_rate, "weight_decay": 0.0, "lr_drops": 0, "lr_patience": 10 ** 6,
            "epochs": epochs, "final_ten_crop": False}


def train_curve(activation, learning_rate, epochs):
    """(per-epoch training error, results) of the four-layer net with `activation` at `learning_rate`."""
    recipe = no_regularisation(learning_rate, epochs)
    if FLAGS.quick:   # whole epochs of 512 shipped images, so that there is a curve to read
        recipe["max_steps"] = 0
    variant = {"four_layer": {"activation": activation}, "data": {"augment": False}, "recipe": recipe}
    results = variants.run_variant(variant, FLAGS.seed, None, FLAGS.quick, epochs, FLAGS.train_limit or TRAIN_LIMIT)
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
    if FLAGS.quick:
        FLAGS.learning_rates, FLAGS.epochs = ["0.01", "0.05"], 2
    epochs = FLAGS.epochs or EPOCHS
    rows, series = [], {}
    for activation in ACTIVATIONS:
        lr, probes = choose_learning_rate(activation)
        curve, results = train_curve(activation, lr, epochs)
        reached = variants.epochs_to(curve, FLAGS.target)
        rows.append({"non-linearity": activation, "learning rate (chosen)": lr,
                     "probes (lr: train error after probe)": ", ".join(f"{k:g}: {v:.3f}" for k, v in probes.items()),
                     f"epochs to {FLAGS.target:.0%} train error": reached, "epochs run": len(curve),
                     "final train error": curve[-1] if curve else None,
                     "test error": results["final"]["centre_top1_error"], "wall seconds": results["wall_seconds"]})
        series[activation] = (list(range(1, len(curve) + 1)), curve)
        print(rows[-1], flush=True)
    relu, tanh = (r[f"epochs to {FLAGS.target:.0%} train error"] for r in rows)
    if relu and tanh:
        ratio = f"tanh / ReLU = {tanh / relu:.2f} (paper: {PAPER_RATIO:g})"
    elif relu:
        ratio = (f"tanh did not reach {FLAGS.target:.0%} in {rows[1]['epochs run']} epochs: ratio at least "
                 f"{rows[1]['epochs run'] / relu:.2f} (paper: {PAPER_RATIO:g})")
    else:
        ratio = f"ReLU did not reach {FLAGS.target:.0%}: no ratio (paper: {PAPER_RATIO:g})"
    scale = ("--quick: a few steps on the shipped slice; the numbers only show that the script runs" if FLAGS.quick
             else f"{FLAGS.train_limit or TRAIN_LIMIT} CIFAR-10 training images, batch 128, seed {FLAGS.seed}; one seed")
    report.write_table("relu_vs_tanh", "Fig. 1: ReLU vs tanh, CIFAR-10 four-layer net, epochs to 25% training error",
                       rows, list(rows[0]), notes=[scale, ratio], out_dir=FLAGS.out_dir)
    report.line_figure("relu_vs_tanh", series, "epoch", "training error (mean over the epoch's batches)",
                       "Fig. 1 here: four-layer net on CIFAR-10", out_dir=FLAGS.out_dir,
                       hline=(FLAGS.target, f"{FLAGS.target:.0%}"))


if __name__ == "__main__":
    app.run(main)
