"""Post-training int8 quantization: observers, schemes, conversion to the TFLite int8 spec (the fixed-point
arithmetic it shares with the op definitions is the leaf module ``edgekit.fixedpoint``)."""
