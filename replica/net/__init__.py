"""The network: the paper's layers and their fast forms, the two towers and the comparison nets, their devices,
precision and memory, the collapse to one device, the per-layer table."""
