"""Trained nets in use: ImageNet-trained weights imported from ONNX, classification, export."""
