"""The learning-rate schedule of PAPER.md 3 (paper 5): "divide the learning rate by 10 when the validation error
rate stopped improving with the current learning rate", reduced three times prior to termination.

"Stopped improving" is ours to define (the paper gives no patience): `patience` epochs in a row without a new
lowest validation error. After `drops` drops, the next such plateau ends the run. A pure function of numbers, so
it is tested without a network; the trainer keeps its state in the checkpoint. `--lr_drop_epochs` replaces it with a
schedule fixed in advance (ours, for comparisons whose variants must train alike: experiments/regimes.py).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class PlateauState:
    learning_rate: float
    best_error: float = 1.0
    stale_epochs: int = 0       # epochs since the validation error last improved
    drops: int = 0
    finished: bool = False


def after_epoch(state, val_error, patience, drops, factor):
    """(the state after an epoch whose validation error is `val_error`, what happened: None, "drop" or "end")."""
    if val_error < state.best_error:
        return dataclasses.replace(state, best_error=val_error, stale_epochs=0), None
    stale = state.stale_epochs + 1
    if stale < patience:
        return dataclasses.replace(state, stale_epochs=stale), None
    if state.drops >= drops:
        return dataclasses.replace(state, stale_epochs=0, finished=True), "end"
    return dataclasses.replace(state, stale_epochs=0, drops=state.drops + 1,
                               learning_rate=state.learning_rate / factor), "drop"


def after_fixed_epoch(state, epoch, drop_epochs, factor):
    """The fixed schedule: the learning rate divided at the end of each epoch (1-based) in `drop_epochs`; (the state
    after 0-based `epoch`, "drop" or None)."""
    if epoch + 1 not in drop_epochs:
        return state, None
    return dataclasses.replace(state, drops=state.drops + 1, learning_rate=state.learning_rate / factor), "drop"
