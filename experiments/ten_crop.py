"""Experiment 8 (paper 4.1, 6): 10-crop (4 corners + centre and their mirrors, softmax averaged) vs centre crop.

The paper: 37.5 / 17.0 with 10 crops vs 39.0 / 18.3 with the centre crop (ILSVRC-2010 test, one CNN).

  python experiments/ten_crop.py [--quick]        (default ~25 min: 2 seeds x 30,000 images + 10-crop evaluation)
"""
from experiments import variants

SPEC = {
    "name": "ten_crop", "title": "10-crop vs centre-crop evaluation, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"two towers": {"ten_crop": True}},
    "metrics": {
        "centre top-1 error": lambda r: r["final"]["centre_top1_error"],
        "10-crop top-1 error": lambda r: r["final"].get("ten_crop_top1_error"),
        "centre top-5 error": lambda r: r["final"]["centre_top5_error"],
        "10-crop top-5 error": lambda r: r["final"].get("ten_crop_top5_error"),
    },
    "paper": {"two towers": "centre 39.0 / 18.3, 10 crops 37.5 / 17.0 (ILSVRC-2010 test)"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
