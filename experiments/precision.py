"""Mixed bfloat16 (--precision=mixed_bfloat16) against float32, two towers on CIFAR-10.

bfloat16 convolutions, matmuls and exchanges with float32 weights, LRN, softmax and loss (replica.layers). Kept only
where its test error stays within seed noise of float32; its speed is experiments/benchmark.py --precision.

  python experiments/precision.py [--quick]   (default ~45 min: 2 variants x 2 seeds x 30,000 images x 1.48 GFLOP)
"""
from experiments import variants

SPEC = {
    "name": "precision", "title": "float32 vs mixed bfloat16, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"float32": {"model": {"precision": "float32"}},
                 "mixed_bfloat16": {"model": {"precision": "mixed_bfloat16"}}},
    "paper": {"float32": "the paper's arithmetic (GTX 580, float32)", "mixed_bfloat16": "not in the paper"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
