"""Experiment 7 (paper 4.1): PCA colour augmentation on / off, and random crops + mirrors on / off.

The paper: PCA colour noise lowers top-1 error by over 1 (ILSVRC); without the crops and mirrors the net
overfits substantially.

  python experiments/augmentation.py [--quick]    (default ~50 min: 3 variants x 2 seeds x 30,000 images)
"""
from experiments import variants

SPEC = {
    "name": "augmentation", "title": "Data augmentation on / off, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"crops + mirrors": {"data": {"augment": True}},
                 "crops + mirrors + PCA colour": {"data": {"augment": True, "pca_colour_augment": True}},
                 "no augmentation": {"data": {"augment": False}}},
    "paper": {"crops + mirrors + PCA colour": "top-1 lower by over 1 than without PCA colour (ILSVRC)",
              "no augmentation": "substantial overfitting"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
