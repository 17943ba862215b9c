"""The training recipe as one record (PAPER.md 3, paper 5): batch 128, SGD with momentum 0.9 and weight decay
0.0005, learning rate 0.01 divided by 10 when the validation error stops improving, three times; and what a
resumed run may change of it.
"""
import dataclasses
import json

from replica import paper
from replica.errors import UserError


class RecipeChanged(UserError):
    """A resumed run was given a recipe setting that cannot change mid-run."""


# What resuming with a changed TrainConfig field does (README, Checkpoints). These would make the run a different
# optimisation from its first step, so they are refused; every other field applies from the step the run
# resumes at, recorded with that step in history.json's "changes" (a new learning_rate rescales the current
# one: learning_rate / lr_drop_factor ** drops so far).
FIXED_ON_RESUME = ("batch_size", "momentum", "weight_decay", "decay_biases", "lr_drop_factor", "seed")


@dataclasses.dataclass
class TrainConfig:
    """Every constant of the recipe; the defaults are the paper's (PAPER.md 3) unless marked ours."""
    batch_size: int = paper.BATCH_SIZE
    learning_rate: float = paper.LEARNING_RATE
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    decay_biases: bool = False          # ours: cuda-convnet's layer files put no decay on biases
    epochs: int = paper.EPOCHS
    lr_drop_factor: float = paper.LR_DROP_FACTOR
    lr_drops: int = paper.LR_DROPS
    lr_patience: int = 2                # ours: epochs without improvement before a drop (the paper gives none)
    lr_drop_epochs: tuple = ()          # ours: a fixed schedule instead, dropping after these epochs (1-based)
    seed: int = 0
    max_steps: int = 0                  # ours: stop after this many steps in all (0: no limit)
    checkpoint_every: int = 500         # steps; a checkpoint is also written at each epoch's end
    keep_checkpoints: int = 3
    log_every: int = 20                 # steps between progress lines and TensorBoard points
    eval_batch_size: int = 128          # ours: images per evaluation step (evaluate.evaluate's default too)
    eval_limit: int = 0                 # ours: evaluate on at most this many images each epoch (0: all)
    final_ten_crop: bool = True


def recipe_json(config):
    """The recipe as the checkpoint stores it."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def changes_on_resume(saved, config, run_dir):
    """The settings `config` changes from the recipe a checkpoint was saved with, as (setting, from, to), sorted;
    raises RecipeChanged for a FIXED_ON_RESUME one."""
    current = json.loads(recipe_json(config))
    fixed = [f"{k}={current[k]} (started with {saved[k]})" for k in FIXED_ON_RESUME
             if k in saved and saved[k] != current[k]]
    if fixed:
        raise RecipeChanged(f"{run_dir} was started with other flags: {', '.join(fixed)}; these cannot "
                            "change mid-run: use another --run_dir")
    return [(k, saved[k], current[k]) for k in sorted(current) if k in saved and saved[k] != current[k]]


def paper_constants():
    """The paper's constants (replica/paper.py) as results.json records them."""
    return {k: v for k, v in vars(paper).items() if k.isupper() and isinstance(v, (int, float, str, tuple))}
