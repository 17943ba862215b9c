"""Experiment 8 (paper 4.1, 6): 10-crop (4 corners + centre and their mirrors, softmax averaged) vs centre crop.

The paper: 37.5 / 17.0 with 10 crops vs 39.0 / 18.3 with the centre crop (ILSVRC-2010 test, one CNN): 1.5 / 1.3
points gained by evaluating 10 crops of the same net. Both evaluations here are of the same trained runs, so the
comparison is paired: the gain is computed per seed and its spread over seeds is the noise that matters.

Budget: 2 seeds x 30,000 images (10,000 x 3 epochs) at 1.48 GFLOP per image (6 x 247 M multiply-adds, CIFAR-10
geometry) = 44 TFLOP per seed, about 3.7 min at ~200 GFLOP/s; the epoch-end validations (2,000 images) and the
final centre and 10-crop evaluations of the 10,000 test images (11 forward passes of 0.49 GFLOP each per image)
add about 3 min a seed: ~15 min in all.

  python experiments/ten_crop.py [--quick]
"""
from experiments import variants

PAPER_GAIN = {"top-1": 39.0 - 37.5, "top-5": 18.3 - 17.0}   # points, ILSVRC-2010 test (Table 1, section 6)


def paired_gain(runs_of, out_dir):
    """Per seed, centre error minus 10-crop error of the same run (top-1 and top-5), and their mean and spread."""
    notes = []
    for name, runs in runs_of.items():
        for k, label in (("top1", "top-1"), ("top5", "top-5")):
            gains = [100 * (r["final"][f"centre_{k}_error"] - r["final"][f"ten_crop_{k}_error"]) for r in runs]
            mean, sd = variants.summarise(gains)
            spread = f" +- {sd:.2f}" if sd is not None else " (one seed)"
            verdict = ("" if sd is None else ": beyond twice the seed sd" if abs(mean) > 2 * sd
                       else ": within twice the seed sd")
            notes.append(f"{name}, {label}: 10 crops gain {mean:.2f}{spread} points over the centre crop "
                         f"(per seed: {', '.join(f'{g:.2f}' for g in gains)}){verdict}; paper "
                         f"{PAPER_GAIN[label]:.1f}")
    return notes


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
    "analysis": paired_gain,
}

if __name__ == "__main__":
    variants.main_for(SPEC)
