"""Analytic bias correction (Nagel et al., "Data-Free Quantization", 2019, section 4.2).

Rounding the weights changes each output channel's expected value by dW . E[x], where dW is the
weight quantization error and E[x] the mean of the layer's input per channel. Subtracting that from
the int32 bias removes the systematic shift; on MobileNetV2 it is what lifts int8 top-1 agreement
with float on the photos from 8/9 to 9/9. Input means come from the same calibration samples.
"""

import numpy as np

from edgekit.ir.interpreter import run_graph
from edgekit.ops import get_op


def input_channel_means(float_graph, samples) -> dict[str, np.ndarray]:
    """Mean of the input per channel (last axis) of every node with weights over ``samples``, by node name."""
    sums: dict[str, list] = {}
    for sample in samples:
        values = run_graph(float_graph, [sample], mode="float", keep_all=True)
        for node in float_graph.nodes:
            if get_op(node.op, node).weight_channel_axis is not None:
                x = values[node.inputs[0]]
                sums.setdefault(node.name, []).append(x.reshape(-1, x.shape[-1]).mean(axis=0))
    return {name: np.mean(parts, axis=0) for name, parts in sums.items()}


def correct_bias(float_graph, int8_graph, means: dict[str, np.ndarray]) -> None:
    """Shift the int32 bias of every node with weights of ``int8_graph`` (in place) by -dW . E[x]
    (``OpDef.expected_output_error`` knows each weight layout)."""
    for node in int8_graph.nodes:
        if node.name not in means or len(node.inputs) < 3:
            continue
        weight = int8_graph.tensors[node.inputs[1]]
        weight_error = weight.quant.dequantize(weight.data).astype(np.float64) - \
            float_graph.tensors[node.inputs[1]].data.astype(np.float64)
        error = get_op(node.op, node).expected_output_error(weight_error, means[node.name])
        bias = int8_graph.tensors[node.inputs[2]]
        corrected = bias.data.astype(np.int64) - np.round(error / bias.quant.scale.astype(np.float64))
        bias.data = np.clip(corrected, -(2**31 - 1), 2**31 - 1).astype(np.int32)
