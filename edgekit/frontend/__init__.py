"""Frontends: turn a model from another framework (TFLite, ONNX, torch) into an edgekit Graph."""
