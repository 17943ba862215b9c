"""Experiment 4 (paper 3.3): local response normalisation on (paper constants, cuda-convnet constants) and off.

The paper: LRN lowers top-1 / top-5 error by 1.4 / 1.2 on ImageNet; on CIFAR-10 a four-layer net gets 13% test
error without and 11% with. Here on the two towers (CIFAR-10 geometry), and on the four-layer net
(replica.net.four_layer): its 13% configuration, and its 11% one (cross-map LRN size 9, random 24x24 crops).

In the architecture regime (experiments/regimes.py); the two towers with LRN are the shared baseline runs. The
claim judged is the two towers' (no LRN minus LRN, expected positive); the four-layer nets run beside it for the
CIFAR-10 figure (their 13% / 11% are for full training on all 50,000 images, which this budget is not).

  python experiments/lrn.py [--quick]     (default: 3 new no-LRN runs x 300,000 images, ~45 min; the four-layer
                                           nets cost 0.21 GFLOP an image, about 10 min for their 6 runs)
"""
from experiments import regimes, variants

SPEC = {
    "name": "lrn", "title": "LRN on / off: the two towers and the four-layer net on CIFAR-10",
    **regimes.ARCHITECTURE,
    "variants": {"LRN, paper constants": {"model": {"lrn": "paper"}},
                 "no LRN": {"model": {"lrn": "none"}},
                 "four-layer net, no LRN (13% config)": {"four_layer": {"lrn": False}},
                 "four-layer net, LRN + 24x24 crops (11% config)": {"four_layer": {"lrn": True, "input_size": 24},
                                                                     "data": {"input_size": 24}}},
    "pairs": [("LRN, paper constants", "no LRN"),
              ("four-layer net, no LRN (13% config)", "four-layer net, LRN + 24x24 crops (11% config)")],
    "paper": {"LRN, paper constants": "lower by 1.4 / 1.2 (ILSVRC); CIFAR-10 4-layer net 11% vs 13%",
              "no LRN": "baseline", "four-layer net, no LRN (13% config)": "13% test error (CIFAR-10, full training)",
              "four-layer net, LRN + 24x24 crops (11% config)": "11% test error (CIFAR-10, full training)"},
    "claims": [{"key": "lrn", "order": 4, "text": "LRN lowers the error (paper 3.3)", "paper": "top-1 lower by 1.4 "
                "(ILSVRC)", "baseline": "LRN, paper constants", "variant": "no LRN", "expected_sign": +1,
                "paper_effect": 0.014}],
}

if __name__ == "__main__":
    variants.main_for(SPEC)
