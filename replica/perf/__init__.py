"""Where a training step's time goes: the per-device cost model and the profiler's reading of a step."""
