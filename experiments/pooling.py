"""Experiment 5 (paper 3.4): overlapping (3/2) vs non-overlapping (2/2) max pooling.

The paper: overlapping pooling lowers top-1 / top-5 error by 0.4 / 0.3 and makes the net slightly harder to
overfit. In the CIFAR-10 geometry both give maps of 16, 8, 4 (README).

In the architecture regime (experiments/regimes.py); the overlapping runs are the shared baseline runs.

  python experiments/pooling.py [--quick]     (default: 3 new runs x 300,000 images, ~45 min)
"""
from experiments import regimes, variants

SPEC = {
    "name": "pooling", "title": "Overlapping vs non-overlapping pooling, two towers on CIFAR-10",
    **regimes.ARCHITECTURE,
    "variants": {"overlapping 3/2": {"model": {"pooling": "overlapping"}},
                 "non-overlapping 2/2": {"model": {"pooling": "non-overlapping"}}},
    "paper": {"overlapping 3/2": "lower by 0.4 / 0.3 (ILSVRC)", "non-overlapping 2/2": "baseline"},
    "claims": [{"key": "pooling", "order": 5, "text": "overlapping pooling lowers the error (paper 3.4)",
                "paper": "top-1 lower by 0.4 (ILSVRC)", "baseline": "overlapping 3/2",
                "variant": "non-overlapping 2/2", "expected_sign": +1, "paper_effect": 0.004}],
}

if __name__ == "__main__":
    variants.main_for(SPEC)
