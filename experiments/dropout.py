"""Experiment 6 (paper 4.2): dropout 0.5 on fc6/fc7 on and off: train vs test error (overfitting).

The paper: without dropout the net overfits substantially; with it, it takes about twice the iterations to
converge. Reported: final train error (last epoch's batches) and test error, their gap.

  python experiments/dropout.py [--quick]     (default ~40 min: 2 variants x 2 seeds x 5,000 images x 6 epochs)
"""
from experiments import variants

SPEC = {
    "name": "dropout", "title": "Dropout on / off, two towers on CIFAR-10",
    "seeds": 2, "epochs": 6, "train_limit": 5000,
    "variants": {"dropout 0.5": {"model": {"dropout_rate": 0.5}}, "no dropout": {"model": {"dropout_rate": 0.0}}},
    "metrics": {
        "test top-1 error": lambda r: r["final"]["centre_top1_error"],
        "train top-1 error (last epoch)": lambda r: r["history_last_train_top1"],
        "train images/s": lambda r: r["train_images_per_second"],
    },
    "paper": {"dropout 0.5": "no substantial overfitting; ~2x the iterations to converge",
              "no dropout": "substantial overfitting"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
