"""quantize (float -> int8, or int8 -> int8 with new parameters) and dequantize (int8 -> float).

These sit at the model boundary of float-interface models. Both keep the shape and are the identity
on float values; they differ only in their int8 arithmetic.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.base import OpDef, quant_of


@dataclass
class NoAttrs:
    pass


class _Conversion(OpDef):
    """A change of representation: same shape, the identity on float values."""

    attrs_type = NoAttrs

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        return [inputs[0]]


class Quantize(_Conversion):
    name = "quantize"

    def run_int8(self, node, graph, inputs):
        q_out = quant_of(graph, node.outputs[0])
        x = inputs[0]
        if x.dtype == np.int8:  # TFLite's int8 -> int8 requantize
            q_in = quant_of(graph, node.inputs[0])
            mult, shift = quantize_multiplier(np.float64(q_in.scalar_scale) / np.float64(q_out.scalar_scale))
            y = multiply_by_quantized_multiplier(x.astype(np.int64) - q_in.scalar_zero_point, mult, shift)
            return [np.clip(y + q_out.scalar_zero_point, -128, 127).astype(np.int8)]
        return [q_out.quantize(x)]


class Dequantize(_Conversion):
    name = "dequantize"

    def run_int8(self, node, graph, inputs):
        return [quant_of(graph, node.inputs[0]).dequantize(inputs[0])]


QUANTIZE = Quantize()
DEQUANTIZE = Dequantize()
