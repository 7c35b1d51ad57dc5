"""abs: |x| (distance-like features, the magnitude of a difference).

int8 follows TFLite Micro's ABS (elementwise.cc, AbsEvalQuantized): |x - zp_in|, rescaled to the
output by QuantizeMultiplier(s_in / s_out) (a float32 quotient) only where the two float32 scales
differ, plus zp_out, clamped to int8.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.base import quant_of
from edgekit.ops.elementwise import UnaryOp, widened
from edgekit.ops.quantize import NoAttrs


@dataclass(frozen=True)
class AbsInt8Params:
    input_zero_point: int
    output_zero_point: int
    rescale: tuple[int, int] | None  # (multiplier, shift), None when the scales are equal


def abs_int8_params(node, graph) -> AbsInt8Params:
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.outputs[0])
    s_in, s_out = np.float32(q_in.scalar_scale), np.float32(q_out.scalar_scale)
    rescale = quantize_multiplier(float(s_in / s_out)) if s_in != s_out else None
    return AbsInt8Params(q_in.scalar_zero_point, q_out.scalar_zero_point, rescale)


def abs_int8(x, p: AbsInt8Params) -> np.ndarray:
    magnitude = np.abs(widened(x) - p.input_zero_point)
    if p.rescale is not None:
        magnitude = multiply_by_quantized_multiplier(magnitude, *p.rescale)
    return np.clip(magnitude + p.output_zero_point, -128, 127).astype(np.int8)


class Abs(UnaryOp):
    name = "abs"
    attrs_type = NoAttrs

    def run_float(self, attrs, inputs):
        return [np.abs(inputs[0]).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [abs_int8(inputs[0], abs_int8_params(node, graph))]


OP = Abs()
