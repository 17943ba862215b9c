"""The choices and defaults that depend on the net or the data set, defined once for the command line, the
experiments and the library (the recipe's defaults are `recipe.TrainConfig`'s, the paper's constants `paper`'s).
"""
from replica import paper

TOWERS = ("2", "1", "merged", "grouped")   # the paper's towers, its one-GPU baseline, the dense net, Caffe's groups
PRECISIONS = ("float32", "tf32", "mixed_bfloat16", "mixed_float16")   # replica.net.precision says what each means
LRN_MODES = ("paper", "cuda-convnet", "caffe", "none")   # replica.net.layers.lrn_constants says what each means
POOLING_MODES = ("overlapping", "non-overlapping")   # 3/2 and 2/2 (paper 3.4)
ACTIVATIONS = ("relu", "tanh")   # paper 3.1
DROPPABLE_LAYERS = ("conv3", "conv4")   # paper 7: removing a middle conv layer costs about 2 points

# Per data set: the input sizes it can take, and the defaults of the settings that depend on it (README,
# deviations: CIFAR-10's 32x32 geometry, Caffe's positive bias 0.1 where the paper's 1 diverges, 10 epochs).
DATASETS = {
    "cifar10": {"input_sizes": (32, 24), "input_size": 32, "positive_bias": 0.1, "epochs": 10},
    "imagenet_folder": {"input_sizes": (paper.INPUT_SIZE, paper.STATED_INPUT_SIZE), "input_size": paper.INPUT_SIZE,
                        "positive_bias": paper.POSITIVE_BIAS, "epochs": paper.EPOCHS},
}


def require_one_of(name, value, allowed):
    """`value` if it is one of `allowed`, else a ValueError naming the setting and its choices."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def towers_value(text):
    """--towers as build_model takes it: 2 and 1 as numbers, "merged" and "grouped" as they are."""
    return int(text) if str(text) in ("1", "2") else text


def devices_for(towers):
    """How many devices a net can use: the two towers one each, the single-device nets one."""
    return 2 if str(towers) == "2" else 1


def parse_gpus(text):
    """'0,1' -> [0, 1]; a malformed or repeated list is a ValueError saying what to pass."""
    parts = [p.strip() for p in str(text).split(",")]
    if any(not p.isdigit() for p in parts):
        raise ValueError(f"--gpus={text!r} is not a comma-separated list of device indices such as 0,1")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"--gpus={text!r} names a device twice; name each device once, e.g. --gpus=0,1")
    return ids


def too_many_devices(towers, ids):
    """Why `ids` are more devices than `--towers=towers` can use, or None."""
    n = devices_for(towers)
    if len(ids) > n:
        return (f"--towers={towers} runs on at most {n} device(s) but --gpus names {len(ids)}; "
                f"use --gpus={','.join(map(str, range(n)))}")
    return None


def gpus_problem(towers, text):
    """Why `--gpus=text` cannot work for `--towers=towers` on any machine, or None (whether the devices exist is
    the machine's to say: replica.net.devices)."""
    try:
        return too_many_devices(towers, parse_gpus(text))
    except ValueError as e:
        return str(e)


def default_gpus(towers):
    """One device per tower: "0,1" for the two towers, "0" for the single-device nets."""
    return "0,1" if str(towers) == "2" else "0"


def dataset_default(dataset, name, given=None):
    """`given` when set, else the data set's default for `name` (input_size, positive_bias, epochs)."""
    return given if given is not None else DATASETS[dataset][name]
