"""The choices and defaults that depend on the net or the data set, defined once for the command line, the
experiments and the library (the recipe's defaults are `recipe.TrainConfig`'s, the paper's constants `paper`'s).
"""
from replica import paper

TOWERS = ("2", "1", "merged", "grouped")   # the paper's towers, its one-GPU baseline, the dense net, Caffe's groups
PRECISIONS = ("float32", "tf32", "mixed_bfloat16", "mixed_float16")   # replica.net.precision says what each means

# Per data set: the input sizes it can take, and the defaults of the settings that depend on it (README,
# deviations: CIFAR-10's 32x32 geometry, Caffe's positive bias 0.1 where the paper's 1 diverges, 10 epochs).
DATASETS = {
    "cifar10": {"input_sizes": (32, 24), "input_size": 32, "positive_bias": 0.1, "epochs": 10},
    "imagenet_folder": {"input_sizes": (paper.INPUT_SIZE, 224), "input_size": paper.INPUT_SIZE,
                        "positive_bias": paper.POSITIVE_BIAS, "epochs": paper.EPOCHS},
}


def towers_value(text):
    """--towers as build_model takes it: 2 and 1 as numbers, "merged" and "grouped" as they are."""
    return int(text) if str(text) in ("1", "2") else text


def default_gpus(towers):
    """One device per tower: "0,1" for the two towers, "0" for the single-device nets."""
    return "0,1" if str(towers) == "2" else "0"


def dataset_default(dataset, name, given=None):
    """`given` when set, else the data set's default for `name` (input_size, positive_bias, epochs)."""
    return given if given is not None else DATASETS[dataset][name]
