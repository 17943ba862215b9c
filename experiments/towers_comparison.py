"""Experiment 3 (paper 3.2): two towers vs the paper's one-GPU baseline vs the merged net, same recipe and budget.

The paper: the two towers' top-1 / top-5 error is lower by 1.7 / 1.2 than the one-GPU net's (ImageNet), and the
two-tower net "takes slightly less time to train" on two GPUs than the one-GPU net on one; the per-device cost
model behind that is experiments/results/cost_model.md (python experiments/architecture.py).

  python experiments/towers_comparison.py            (default: ~55 min here)
  python experiments/towers_comparison.py --quick

Budget arithmetic (32x32 geometry, training step = 6 x forward multiply-adds): two towers 1.48 GFLOP/image,
one-GPU net 0.72, merged net 2.61 (per-layer tables at input 32). 10,000 images x 3 epochs = 30,000 images per run:
44 + 22 + 78 = 144 TFLOP per seed, at ~100 GFLOP/s achieved about 24 min per seed; 2 seeds about 50 min.
"""
from experiments import variants

SPEC = {
    "name": "towers_comparison",
    "title": "Two towers vs the one-GPU net vs the merged net (CIFAR-10, same recipe and budget)",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {
        "two towers (--towers=2, 2 devices)": {"towers": 2},
        "one-GPU net (--towers=1)": {"towers": 1},
        "merged net (--towers=merged)": {"towers": "merged"},
    },
    "paper": {"two towers (--towers=2, 2 devices)": "ILSVRC top-1/top-5 lower by 1.7/1.2 than the one-GPU net",
              "one-GPU net (--towers=1)": "baseline", "merged net (--towers=merged)": "not in the paper"},
    "notes": ["train images/s here is on two logical devices of one 2-core CPU: the towers share the cores, so "
              "it measures work per image, not the two-GPU speed-up (see the cost model)"],
}

if __name__ == "__main__":
    variants.main_for(SPEC)
