"""Experiment 8 (paper 4.1, 6): 10 crops (4 corners + centre and their mirrors, softmax averaged) vs the centre crop.

The paper: 37.5 / 17.0 with 10 crops vs 39.0 / 18.3 with the centre crop (ILSVRC-2010 test, one CNN): 1.5 / 1.3
points gained by evaluating 10 crops of the same net. Here both evaluations are of the same trained runs, so the
comparison is paired: the gain is computed per seed and its spread over seeds is the noise that matters.

In the photos regime (experiments/regimes.py): the two towers at 227x227 on tiny-imagenet-10's photos, 20 epochs,
3 seeds, evaluated on its 500 val photos, each a 256x256 image whose 227 crops are the paper's. These are the runs
experiments/conv1_kernels.py analyses (trained once, reused by whichever script comes second): about 36 min a
seed, 1 h 50 min for three, and 11 forward passes of 500 photos at the end of each.

  python experiments/ten_crop.py [--quick]
"""
from experiments import regimes, variants

PAPER_GAIN = {"top-1": 39.0 - 37.5, "top-5": 18.3 - 17.0}   # points, ILSVRC-2010 test (Table 1, section 6)
TOWERS = "two towers"


def paired_gain(runs_of, out_dir):
    """Per seed, centre error minus 10-crop error of the same run (top-1 and top-5), and their mean and spread."""
    notes = []
    for name, runs in runs_of.items():
        for k, label in (("top1", "top-1"), ("top5", "top-5")):
            gains = [100 * (r["final"][f"centre_{k}_error"] - r["final"][f"ten_crop_{k}_error"]) for r in runs]
            mean, sd = variants.summarise(gains)
            spread = f" +- {sd:.2f}" if sd is not None else " (one seed)"
            notes.append(f"{name}, {label}: 10 crops gain {mean:.2f}{spread} points over the centre crop "
                         f"(per seed: {', '.join(f'{g:.2f}' for g in gains)}); paper {PAPER_GAIN[label]:.1f}")
    return notes


SPEC = {
    "name": "ten_crop", "title": "10 crops vs the centre crop, two towers at 227 on tiny-imagenet-10's photos",
    **regimes.PHOTOS,
    "metrics": {
        "centre top-1 error": lambda r: r["final"]["centre_top1_error"],
        "10-crop top-1 error": lambda r: r["final"].get("ten_crop_top1_error"),
        "centre top-5 error": lambda r: r["final"]["centre_top5_error"],
        "10-crop top-5 error": lambda r: r["final"].get("ten_crop_top5_error"),
    },
    "paper": {TOWERS: "centre 39.0 / 18.3, 10 crops 37.5 / 17.0 (ILSVRC-2010 test)"},
    "analysis": paired_gain,
    "claim": {"order": 8, "text": "10 crops beat the centre crop (paper 4.1, 6)", "paper": "top-1 lower by 1.5",
              "baseline": TOWERS, "variant": TOWERS, "baseline_label": "centre crop", "variant_label": "10 crops",
              "baseline_metric": lambda r: r["final"]["centre_top1_error"],
              "variant_metric": lambda r: r["final"]["ten_crop_top1_error"],
              "expected_sign": -1, "paper_effect": 0.015},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
