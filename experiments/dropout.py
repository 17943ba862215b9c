"""Experiment 6 (paper 4.2): dropout 0.5 on fc6/fc7 on and off: train vs test error (overfitting), in the
overfitting regime (experiments/regimes.py: 5,000 images, 40 epochs, a fixed schedule, 3 paired seeds).

The paper: without dropout the net overfits substantially; with it, it takes about twice the iterations to
converge. Reported: final train error (last epoch's batches, dropout active in them) and test error, their gap;
the train and validation error curves per epoch (mean over seeds) as the figure; and how many epochs each net
needs to reach the higher of the two final training errors, the paper's "iterations to converge" read as in Fig. 1.

The claim judged in claims.json: test top-1 error without dropout minus with it is positive (the paper's
"substantial overfitting" without it), paired over the seeds. The regime is in mixed bfloat16, which the precision
claim checks in the same regime; the dropout 0.5 runs are that claim's bfloat16 runs, reused.

  python experiments/dropout.py [--quick]     (default: 2 variants x 3 seeds x 200,000 images, ~60 min here)
"""
from experiments import regimes, variants

PAPER_ITERATIONS_RATIO = 2.0


def curves_and_convergence(runs_of, out_dir):
    """The figure (train and validation error per epoch, each net) and the notes: the train / validation gap at the
    last epoch, and the epochs each net needs to reach the higher final training error."""
    from experiments import report
    series = variants.curve_series(runs_of)
    if not series:
        return ["no whole epoch was trained: no curves"]
    train = {name: series[f"{name}: train (batches)"][1] for name in runs_of}
    val = {name: series[f"{name}: validation"][1] for name in runs_of}
    report.line_figure("dropout", series, "epoch", "top-1 error (mean over seeds)",
                       "Dropout on / off: train and validation error", out_dir=out_dir)
    notes = [f"{name}: validation minus train error at the last epoch {val[name][-1] - train[name][-1]:+.3f} "
             "(the larger, the more overfitting)" for name in runs_of]
    level = max(curve[-1] for curve in train.values())
    reached = {name: variants.epochs_to(curve, level) for name, curve in train.items()}
    reached = {name: None if x is None else round(x, 2) for name, x in reached.items()}
    (with_name, with_dropout), (without_name, without) = reached.items()
    ratio = f": ratio {with_dropout / without:.2f}" if with_dropout and without else ""
    notes.append(f"epochs to reach {level:.3f} training error (the higher final one): {with_name} {with_dropout}, "
                 f"{without_name} {without}{ratio} (paper: about {PAPER_ITERATIONS_RATIO:g}x the iterations "
                 "with dropout)")
    return notes


SPEC = {
    "name": "dropout", "title": "Dropout on / off, two towers on CIFAR-10",
    **regimes.OVERFITTING,
    "variants": {"dropout 0.5": {"model": {"dropout_rate": 0.5}}, "no dropout": {"model": {"dropout_rate": 0.0}}},
    "metrics": {
        "test top-1 error": lambda r: r["final"]["centre_top1_error"],
        "train top-1 error (last epoch)": lambda r: r["history_last_train_top1"],
        "train images/s": lambda r: r["train_images_per_second"],
    },
    "paper": {"dropout 0.5": "no substantial overfitting; ~2x the iterations to converge",
              "no dropout": "substantial overfitting"},
    "analysis": curves_and_convergence,
    "claim": {"order": 6, "text": "without dropout the net overfits (paper 4.2)",
              "paper": "substantial overfitting without; ~2x the iterations with", "baseline": "dropout 0.5",
              "variant": "no dropout", "expected_sign": +1, "more_files": ["experiments/results/dropout.png"]},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
