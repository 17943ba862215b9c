"""Experiment 4 (paper 3.3): local response normalisation on (paper constants, cuda-convnet constants) and off.

The paper: LRN lowers top-1 / top-5 error by 1.4 / 1.2 on ImageNet; on CIFAR-10 a four-layer net gets 13% test
error without and 11% with. Here on the two towers (CIFAR-10 geometry); the four-layer cuda-convnet net is not
built yet (see experiments/README.md).

  python experiments/lrn.py [--quick]     (default ~45 min: 3 variants x 2 seeds x 1.48 GFLOP x 30,000 images
                                           = 266 TFLOP at ~100 GFLOP/s)
"""
from experiments import variants

SPEC = {
    "name": "lrn", "title": "LRN on / off, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"LRN, paper constants": {"model": {"lrn": "paper"}},
                 "no LRN": {"model": {"lrn": "none"}},
                 "LRN, cuda-convnet constants (alpha/5)": {"model": {"lrn": "cuda-convnet"}}},
    "paper": {"LRN, paper constants": "lower by 1.4 / 1.2 (ILSVRC); CIFAR-10 4-layer net 11% vs 13%",
              "no LRN": "baseline"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
