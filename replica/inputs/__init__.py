"""The data: CIFAR-10 and ImageNet in every layout it is distributed in, the paper's crops, mirrors and colour
noise, and preparing ImageNet once (`input_pipeline.load_data` is where to start)."""
