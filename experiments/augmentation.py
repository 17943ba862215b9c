"""Experiment 7 (paper 4.1): PCA colour augmentation on / off, and random crops + mirrors on / off.

The paper: PCA colour noise lowers top-1 error by over 1 (ILSVRC); without the crops and mirrors the net
overfits substantially.

In the overfitting regime (experiments/regimes.py), where the regularisers have something to close; the
"crops + mirrors" runs are the dropout claim's dropout 0.5 runs, reused. Claims judged: PCA colour (its runs minus
crops + mirrors, expected negative) and no augmentation (expected positive).

  python experiments/augmentation.py [--quick]    (default: 2 new variants x 3 seeds x 200,000 images, ~60 min)
"""
from experiments import regimes, variants

SPEC = {
    "name": "augmentation", "title": "Data augmentation on / off, two towers on CIFAR-10",
    **regimes.OVERFITTING,
    "variants": {"crops + mirrors": {"data": {"augment": True, "pca_colour_augment": False}},
                 "crops + mirrors + PCA colour": {"data": {"augment": True, "pca_colour_augment": True}},
                 "no augmentation": {"data": {"augment": False, "pca_colour_augment": False}}},
    "paper": {"crops + mirrors + PCA colour": "top-1 lower by over 1 than without PCA colour (ILSVRC)",
              "no augmentation": "substantial overfitting"},
    "claims": [
        {"key": "pca_colour", "order": 7, "text": "PCA colour noise lowers the error (paper 4.1)",
         "paper": "top-1 lower by over 1 (ILSVRC)", "baseline": "crops + mirrors",
         "variant": "crops + mirrors + PCA colour", "expected_sign": -1, "paper_effect": -0.01},
        {"key": "crops_and_mirrors", "order": 8, "text": "without crops and mirrors the net overfits (paper 4.1)",
         "paper": "substantial overfitting without", "baseline": "crops + mirrors", "variant": "no augmentation",
         "expected_sign": +1},
    ],
}

if __name__ == "__main__":
    variants.main_for(SPEC)
