"""Experiment 9 (paper 7): removing a middle convolutional layer (conv3 or conv4) from the two towers.

The paper: removing any middle layer costs about 2 points of top-1 error on ILSVRC. The net without conv3 keeps one
exchange in the conv stack (conv4 sees both towers' pool2); without conv4, conv5 sees its tower's conv3
(replica.build_model(drop_layer=...)).

In the architecture regime (experiments/regimes.py); the five-layer runs are the shared baseline runs.

  python experiments/drop_layer.py [--quick]   (default: 6 new runs x 300,000 images, ~1 h 30 min)
"""
from experiments import regimes, variants

SPEC = {
    "name": "drop_layer", "title": "Removing a middle conv layer, two towers on CIFAR-10",
    **regimes.ARCHITECTURE,
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
