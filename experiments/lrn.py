"""Experiment 4 (paper 3.3): local response normalisation on (paper constants, cuda-convnet constants) and off.

The paper: LRN lowers top-1 / top-5 error by 1.4 / 1.2 on ImageNet; on CIFAR-10 a four-layer net gets 13% test
error without and 11% with. Here on the two towers (CIFAR-10 geometry), and on the four-layer net
(replica.four_layer): its 13% configuration, and its 11% one (cross-map LRN size 9, random 24x24 crops).

  python experiments/lrn.py [--quick]     (default ~50 min: 3 AlexNet variants x 2 seeds x 1.48 GFLOP x 30,000
                                           images = 266 TFLOP at ~100 GFLOP/s, 45 min; the four-layer nets cost
                                           0.21 GFLOP an image: 2 x 2 x 30,000 images, about 4 min)
"""
from experiments import variants

SPEC = {
    "name": "lrn", "title": "LRN on / off: the two towers and the four-layer net on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"LRN, paper constants": {"model": {"lrn": "paper"}},
                 "no LRN": {"model": {"lrn": "none"}},
                 "LRN, cuda-convnet constants (alpha/5)": {"model": {"lrn": "cuda-convnet"}},
                 "four-layer net, no LRN (13% config)": {"four_layer": {"lrn": False}},
                 "four-layer net, LRN + 24x24 crops (11% config)": {"four_layer": {"lrn": True, "input_size": 24},
                                                                     "data": {"input_size": 24}}},
    "pairs": [("LRN, paper constants", "no LRN"),
              ("four-layer net, no LRN (13% config)", "four-layer net, LRN + 24x24 crops (11% config)")],
    "paper": {"LRN, paper constants": "lower by 1.4 / 1.2 (ILSVRC); CIFAR-10 4-layer net 11% vs 13%",
              "no LRN": "baseline", "four-layer net, no LRN (13% config)": "13% test error (CIFAR-10, full training)",
              "four-layer net, LRN + 24x24 crops (11% config)": "11% test error (CIFAR-10, full training)"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
