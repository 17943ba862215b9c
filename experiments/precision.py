"""Mixed bfloat16 (--precision=mixed_bfloat16) against float32, two towers on CIFAR-10, in the overfitting regime
(experiments/regimes.py): trained to the end of a fixed schedule, where a precision loss would show.

bfloat16 convolutions, matmuls and exchanges with float32 weights, LRN arithmetic, softmax and loss (replica.net). The
claim (ours, not the paper's): test error in mixed bfloat16 equals float32's within seed noise, so the other
claims may be run in it. Judged paired over the seeds; "agrees" needs the 95% interval of the difference to hold
zero and be narrower than 3 points.

  python experiments/precision.py [--quick]   (default: 2 variants x 3 seeds x 200,000 images, ~80 min here)
"""
from experiments import regimes, variants

SPEC = {
    "name": "precision", "title": "float32 vs mixed bfloat16, two towers on CIFAR-10, overfitting regime",
    **regimes.OVERFITTING,
    "variants": {"float32": {"model": {"precision": "float32"}},
                 "mixed_bfloat16": {"model": {"precision": "mixed_bfloat16"}}},
    "paper": {"float32": "the paper's arithmetic (GTX 580, float32)", "mixed_bfloat16": "not in the paper"},
    "claim": {"order": 0, "text": "mixed bfloat16 trains to float32's test error (ours)", "paper": "- (float32)",
              "baseline": "float32", "variant": "mixed_bfloat16", "expected_sign": 0, "tolerance": 0.03},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
