"""The experiments (experiments/README.md). The package imports replica first: its __init__ chooses the CPU's
kernels (oneDNN), which TensorFlow reads once, when it loads."""
import replica  # noqa: F401
