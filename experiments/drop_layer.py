"""Experiment 9 (paper 7): removing a middle convolutional layer (conv3 or conv4) from the two towers.

The paper: removing any middle layer costs about 2 points of top-1 error on ILSVRC. The net without conv3 keeps one
exchange in the conv stack (conv4 sees both towers' pool2); without conv4, conv5 sees its tower's conv3
(replica.build_model(drop_layer=...)).

In the architecture regime (experiments/regimes.py), in float32, with five-layer baseline runs of its own.

- Why float32, not the regime's mixed bfloat16: as for the augmentation claim, the paper trained in float32, the
  precision claim found the two equal in the overfitting regime, and bfloat16 is emulated (~17x slower) on a CPU
  without bfloat16 units, where float32 runs at full speed. Every variant of this claim is float32, so the
  comparison stays paired; the cost is three baseline runs of its own instead of the towers' mixed bfloat16 runs.
- Cost, planned: 9 runs x 300,000 images. A 32x32 training image is 1.48 GFLOP for the five-layer towers and 1.23
  without conv3 or conv4 (6 x the forward multiply-adds of replica.net.summary.layer_table): 445 and 368 TFLOP a
  run. At the ~90 GFLOP/s the overfitting regime's float32 runs trained at on a 2-core AVX2 CPU (200,000 images in
  56 min), ~85 and ~70 min a run alone, 11 h 10 min for the nine; ~40 and ~33 min at the ~130 images/s of float32
  on a Xeon with AMX. Each finished run is recorded (experiments/results/runs), so they can be trained in parts,
  and on several machines at once (the same command on each, sharing --runs_dir: each skips the run another is
  training).

  python experiments/drop_layer.py [--quick]   (default: 9 runs x 300,000 images, float32)
"""
from experiments import regimes, variants

SPEC = {
    "name": "drop_layer", "title": "Removing a middle conv layer, two towers on CIFAR-10",
    **regimes.ARCHITECTURE,
    "model": {"precision": "float32"},   # the regime's, but in float32 (above)
    "variants": {"all five conv layers": {},
                 "without conv3": {"model": {"drop_layer": "conv3"}},
                 "without conv4": {"model": {"drop_layer": "conv4"}}},
    "pairs": [("all five conv layers", "without conv3"), ("all five conv layers", "without conv4")],
    "paper": {"all five conv layers": "baseline", "without conv3": "top-1 about 2 worse (ILSVRC)",
              "without conv4": "top-1 about 2 worse (ILSVRC)"},
    "claims": [{"key": f"without_{layer}", "order": 9, "text": f"removing {layer} costs about 2 points (paper 7)",
                "paper": "top-1 about 2 worse (ILSVRC)", "baseline": "all five conv layers",
                "variant": f"without {layer}", "expected_sign": +1, "paper_effect": 0.02}
               for layer in ("conv3", "conv4")],
}

if __name__ == "__main__":
    variants.main_for(SPEC)
