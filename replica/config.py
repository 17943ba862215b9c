"""One configuration of a run, defined once: the net, the data, the recipe and the run, as frozen dataclasses whose
defaults are the paper's constants (replica/paper.py, via `recipe.TrainConfig` for the recipe) or marked ours.

`run_experiment.py` defines one flag per field, with the field's name and default, and hands `from_values(flag
values)` to `replica.experiment.main`; `problems(config)` lists every setting that cannot work, checked before
any work starts. A field left None takes a default that depends on another setting (the data set's input size,
positive bias and epochs: `replica.choices.DATASETS`; the towers of a checkpoint being evaluated).
"""
import dataclasses
import math

from replica import choices, paper
from replica.errors import UserError
from replica.training.recipe import TrainConfig

RECIPE = TrainConfig()


@dataclasses.dataclass(frozen=True)
class Net:
    towers: str = None            # "2", "1", "merged", "grouped"; None: 2, or the towers of --checkpoint's run
    input_size: int = None        # None: the data set's (227 ImageNet, 32 CIFAR-10)
    num_classes: int = None       # None: the data set's (1000 for --summary)
    lrn: str = "paper"
    pooling: str = "overlapping"
    activation: str = "relu"
    dropout: float = paper.DROPOUT_RATE
    drop_layer: str = "none"
    precision: str = "float32"
    positive_bias: float = None   # None: the data set's (the paper's 1 for ImageNet, Caffe's 0.1 for CIFAR-10)


@dataclasses.dataclass(frozen=True)
class Data:
    dataset: str = "cifar10"
    data_dir: str = None          # None: the shipped CIFAR-10 slice
    pca_colour: bool = False
    augment: bool = True
    cache_dir: str = None
    cache_decoded: bool = False
    validation_images: int = 0
    train_limit: int = 0


@dataclasses.dataclass(frozen=True)
class Recipe:
    batch_size: int = RECIPE.batch_size
    learning_rate: float = RECIPE.learning_rate
    momentum: float = RECIPE.momentum
    weight_decay: float = RECIPE.weight_decay
    decay_biases: bool = RECIPE.decay_biases
    epochs: int = None            # None: the data set's (the paper's 90 for ImageNet, 10 for CIFAR-10)
    lr_patience: int = RECIPE.lr_patience
    lr_drops: int = RECIPE.lr_drops
    lr_drop_factor: float = RECIPE.lr_drop_factor
    lr_drop_epochs: tuple = ()
    max_steps: int = RECIPE.max_steps


@dataclasses.dataclass(frozen=True)
class Run:
    summary: bool = False
    gpus: str = None              # None: 0,1 for two towers, 0 otherwise
    gpu_memory_mb: int = None
    run_dir: str = None           # None: runs/<dataset>-towers<towers>
    resume: bool = True
    seed: int = RECIPE.seed
    deterministic: bool = False
    checkpoint_every: int = RECIPE.checkpoint_every
    log_every: int = RECIPE.log_every
    eval_limit: int = RECIPE.eval_limit
    ten_crop: bool = None         # None: on for the final evaluation, off for --classify
    eval_only: bool = False
    checkpoint: str = None
    weights: str = None
    classify: tuple = ()
    export: str = None
    workers: int = 1
    worker_hosts: str = None
    task_index: int = 0
    peer_timeout: int = 60


@dataclasses.dataclass(frozen=True)
class Config:
    net: Net = Net()
    data: Data = Data()
    recipe: Recipe = Recipe()
    run: Run = Run()


SECTIONS = {"net": Net, "data": Data, "recipe": Recipe, "run": Run}


def field_names():
    """{field name: section} of every setting (each is also a flag of run_experiment.py)."""
    return {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def setting(name):
    """The dataclasses.Field of the setting `name`: its type and its default."""
    return {f.name: f for cls in SECTIONS.values() for f in dataclasses.fields(cls)}[name]


def default_of(name):
    return setting(name).default


def from_values(values):
    """A Config from {field name: value} (unknown names ignored; lists become tuples)."""
    where = field_names()
    parts = {section: {} for section in SECTIONS}
    for name, value in values.items():
        if name in where:
            parts[where[name]][name] = tuple(value) if isinstance(value, list) else value
    return Config(**{section: SECTIONS[section](**kwargs) for section, kwargs in parts.items()})


def resolved(config, name):
    """A data-set-dependent setting (input_size, positive_bias, epochs) with its default filled in."""
    section = field_names()[name]
    return choices.dataset_default(config.data.dataset, name, getattr(getattr(config, section), name))


def train_config(config):
    """The recipe as replica.training.train.Trainer takes it."""
    r, run = config.recipe, config.run
    return TrainConfig(
        batch_size=r.batch_size, learning_rate=r.learning_rate, momentum=r.momentum, weight_decay=r.weight_decay,
        decay_biases=r.decay_biases, epochs=resolved(config, "epochs"), lr_drop_factor=r.lr_drop_factor,
        lr_drops=r.lr_drops, lr_patience=r.lr_patience, seed=run.seed, max_steps=r.max_steps,
        lr_drop_epochs=tuple(sorted(int(e) for e in r.lr_drop_epochs)), checkpoint_every=run.checkpoint_every,
        log_every=run.log_every, eval_limit=run.eval_limit, final_ten_crop=run.ten_crop is not False)


def check(config):
    """A UserError naming the first of `problems(config)` and how many more there are; nothing when it can work."""
    found = problems(config)
    if found:
        raise UserError(found[0] + (f" (and {len(found) - 1} more flag problem(s))" if len(found) > 1 else ""))


def problems(config):
    """Every setting's range and every combination that cannot work: one line each, naming the flag."""
    n, d, r, run = config.net, config.data, config.recipe, config.run
    towers = n.towers or "2"
    gpus_problem = (choices.gpus_problem(towers, run.gpus) if run.gpus and run.gpus.strip() and towers in choices.TOWERS
                    else None)
    input_sizes = [size for name, spec in choices.DATASETS.items() if run.summary or name == d.dataset
                   for size in spec["input_sizes"]]   # --summary describes the net on any data set's input
    checks = [
        (towers in choices.TOWERS, f"--towers={towers} is not one of {', '.join(choices.TOWERS)}"),
        (n.precision in choices.PRECISIONS, f"--precision={n.precision} is not one of {', '.join(choices.PRECISIONS)}"),
        (run.gpus is None or run.gpus.strip() != "", "--gpus is empty: name one device index per tower, e.g. --gpus=0,1"),
        (gpus_problem is None, gpus_problem),
        (run.gpu_memory_mb is None or run.gpu_memory_mb > 0, f"--gpu_memory_mb={run.gpu_memory_mb} must be positive"),
        (n.input_size is None or n.input_size in input_sizes,
         f"--input_size={n.input_size} does not fit --dataset={d.dataset}: use one of "
         f"{', '.join(map(str, input_sizes))}"),
        (n.num_classes is None or n.num_classes >= 2, f"--num_classes={n.num_classes} must be at least 2"),
        (0 <= n.dropout < 1, f"--dropout={n.dropout:g} must be in [0, 1)"),
        (n.positive_bias is None or abs(n.positive_bias) < 1e3, f"--positive_bias={n.positive_bias} is not a bias"),
        (d.train_limit >= 0, f"--train_limit={d.train_limit} must be 0 (all) or positive"),
        (d.validation_images >= 0, f"--validation_images={d.validation_images} must be 0 or positive"),
        (d.validation_images == 0 or d.dataset == "cifar10",
         "--validation_images holds out CIFAR-10 training images; an image folder's val/ is its validation split"),
        (all(str(e).isdigit() and int(e) > 0 for e in r.lr_drop_epochs),
         f"--lr_drop_epochs={','.join(map(str, r.lr_drop_epochs))} must list epochs, e.g. 20,30"),
        (0 <= r.momentum < 1, f"--momentum={r.momentum:g} must be in [0, 1)"),
        (0 <= r.weight_decay < math.inf, f"--weight_decay={r.weight_decay:g} must be 0 or a positive number"),
        (r.epochs is None or r.epochs >= 1, f"--epochs={r.epochs} must be at least 1"),
        (r.lr_patience >= 1, f"--lr_patience={r.lr_patience} must be at least 1"),
        (r.lr_drops >= 0, f"--lr_drops={r.lr_drops} must be 0 or positive"),
        (1 < r.lr_drop_factor < math.inf, f"--lr_drop_factor={r.lr_drop_factor:g} must be a number above 1"),
        (r.max_steps >= 0, f"--max_steps={r.max_steps} must be 0 (no limit) or positive"),
        (run.eval_limit >= 0, f"--eval_limit={run.eval_limit} must be 0 (all) or positive"),
        (run.workers >= 1, f"--workers={run.workers} must be at least 1"),
        (run.task_index >= 0 and (run.workers == 1 or run.task_index < run.workers),
         f"--task_index={run.task_index} must name one of the {run.workers} worker(s)"),
        (0 <= run.seed < 2**31, f"--seed={run.seed} must be in 0..{2**31 - 1}"),
        (run.peer_timeout > 0, f"--peer_timeout={run.peer_timeout} must be positive"),
        (run.checkpoint is None or run.eval_only or run.classify or run.export,
         "--checkpoint goes with --eval_only, --classify or --export"),
        (not run.eval_only or run.checkpoint or run.weights,
         "--eval_only needs a net: --checkpoint=<run folder or checkpoint path> or --weights=FILE.onnx"),
        (not (run.weights and run.checkpoint), "--weights and --checkpoint both name a net: give one"),
        (not (run.classify or run.export) or run.weights or run.checkpoint,
         "--classify and --export need a net: --weights=FILE.onnx or --checkpoint=RUN"),
        (not run.weights or towers in ("2", "grouped", "merged"),
         f"--weights holds the two towers' widths: --towers=2, grouped or merged, not {towers}"),
        (not (run.weights and run.eval_only) or d.dataset == "imagenet_folder",
         "--weights with --eval_only evaluates on ILSVRC classes: --dataset=imagenet_folder --data_dir=..."),
    ]
    for name, value in (("batch_size", r.batch_size), ("learning_rate", r.learning_rate),
                        ("checkpoint_every", run.checkpoint_every), ("log_every", run.log_every)):
        checks.append((0 < value < math.inf, f"--{name}={value} must be a positive number"))
    return [message for ok, message in checks if not ok]
