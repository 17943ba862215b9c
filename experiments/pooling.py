"""Experiment 5 (paper 3.4): overlapping (3/2) vs non-overlapping (2/2) max pooling.

The paper: overlapping pooling lowers top-1 / top-5 error by 0.4 / 0.3 and makes the net slightly harder to
overfit. In the CIFAR-10 geometry both give maps of 16, 8, 4 (README).

  python experiments/pooling.py [--quick]     (default ~35 min: 2 variants x 2 seeds x 30,000 images)
"""
from experiments import variants

SPEC = {
    "name": "pooling", "title": "Overlapping vs non-overlapping pooling, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"overlapping 3/2": {"model": {"pooling": "overlapping"}},
                 "non-overlapping 2/2": {"model": {"pooling": "non-overlapping"}}},
    "paper": {"overlapping 3/2": "lower by 0.4 / 0.3 (ILSVRC)", "non-overlapping 2/2": "baseline"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
