"""Depth compression (Kim et al., ICML 2023 and LayerMerge, ICML 2024) against latencies measured on the target.

chain.py (the conv backbone), segment.py (segments and plans), merge.py (exact merging),
network.py (torch layout for fine-tuning, ONNX export), tables.py (latency/SRAM in QEMU),
importance.py, dp.py (the two dynamic programs), finetune.py (distillation), dataset.py (DATA),
compressor.py (`edgekit compress`).
"""
