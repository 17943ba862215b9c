"""Training with the paper's recipe: the loop, the optimizer, the schedule, checkpoints and run folders, several
workers, evaluation."""
