"""Experiment 9 (paper 7): removing a middle convolutional layer (conv3 or conv4) from the two towers.

The paper: removing any middle layer costs about 2 points of top-1 error on ILSVRC. The net without conv3 keeps one
exchange in the conv stack (conv4 sees both towers' pool2); without conv4, conv5 sees its tower's conv3
(replica.build_model(drop_layer=...)).

  python experiments/drop_layer.py [--quick]   (default ~40 min: 3 variants x 2 seeds x 30,000 images x 1.48 GFLOP
                                               (a little less without a layer) = 266 TFLOP at ~110 GFLOP/s)
"""
from experiments import variants

SPEC = {
    "name": "drop_layer", "title": "Removing a middle conv layer, two towers on CIFAR-10",
    "seeds": 2, "epochs": 3, "train_limit": 10000,
    "variants": {"all five conv layers": {},
                 "without conv3": {"model": {"drop_layer": "conv3"}},
                 "without conv4": {"model": {"drop_layer": "conv4"}}},
    "pairs": [("all five conv layers", "without conv3"), ("all five conv layers", "without conv4")],
    "paper": {"all five conv layers": "baseline", "without conv3": "top-1 about 2 worse (ILSVRC)",
              "without conv4": "top-1 about 2 worse (ILSVRC)"},
}

if __name__ == "__main__":
    variants.main_for(SPEC)
