"""Experiment 7 (paper 4.1): PCA colour augmentation on / off, and random crops + mirrors on / off.

The paper: PCA colour noise lowers top-1 error by over 1 (ILSVRC); without the crops and mirrors the net
overfits substantially.

In the overfitting regime (experiments/regimes.py), where the regularisers have something to close, in float32:
the "crops + mirrors" runs are the precision claim's float32 runs (dropout 0.5, crops and mirrors, no PCA colour:
the same net, data, recipe and seeds), reused. Claims judged: PCA colour (its runs minus crops + mirrors, expected
negative) and no augmentation (expected positive).

- Why float32, not the regime's mixed bfloat16: the paper trained in float32, the precision claim found the two
  equal in this regime (its table), and float32 runs at full speed on any CPU, while bfloat16 is emulated (~17x
  slower) on one without bfloat16 units. Every variant of this claim is float32, so the comparison stays paired.
- Cost, planned: 2 new variants x 3 seeds x 200,000 images. At 1.48 GFLOP a 32x32 training image, 200,000 images
  are 296 TFLOP a run: ~51 min at the ~65 images/s (~100 GFLOP/s) the first steps trained at on a 2-core AVX2 CPU
  (~165 GFLOP/s float32 matmul), ~25 min at the ~130 images/s of the precision claim's float32 runs on a Xeon
  with AMX (its table), plus the per-epoch validation (2,000 images x 40 epochs, a third of a training image's
  cost each, ~5 min): 5 to 6 hours for the six here. Each finished run is recorded (experiments/results/runs), so
  they can be trained in parts, on several machines. Measured: 56 min a run alone on a 2-core AMD EPYC with AVX2,
  73 min sharing it (`wall_seconds` in the records).

  python experiments/augmentation.py [--quick]
"""
from experiments import regimes, variants

SPEC = {
    "name": "augmentation", "title": "Data augmentation on / off, two towers on CIFAR-10",
    **regimes.OVERFITTING,
    "model": {"precision": "float32"},   # the regime's, but in float32 (above)
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
