"""Post-training int8 quantization: observers, schemes and TFLite's fixed-point requantization."""
