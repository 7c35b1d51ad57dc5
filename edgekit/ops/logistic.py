"""logistic (sigmoid).

int8 follows TFLite Micro's reference_integer_ops::Logistic: the input, less its zero point, is
rescaled into Q4.27 (the Q31 multiplier comes from ``frexp(input_scale * 2**27)``), inputs beyond
the radius where the result saturates give -128 or 127 directly, the rest go through gemmlowp's
fixed-point logistic and are rounded to the fixed output quantization (1/256, -128).
"""

import math
from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import quant_of
from edgekit.ops.quantize import NoAttrs
from edgekit.ops.elementwise import UnaryOp, widened
from edgekit.fixedpoint import logistic, multiply_by_quantized_multiplier, round_half_away, rounding_divide_by_pot

INPUT_INTEGER_BITS = 4
OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class Q4InputParams:
    """The input rescaling of TFLite's int8 LOGISTIC and TANH (into Q4.27)."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int  # |x - zp| at or beyond this saturates the output


def q4_input_params(node, graph) -> Q4InputParams:
    q_in = quant_of(graph, node.inputs[0])
    fraction, left_shift = math.frexp(np.float64(q_in.scalar_scale) * (1 << (31 - INPUT_INTEGER_BITS)))
    multiplier = int(round_half_away(fraction * (1 << 31)))
    radius = math.floor(((1 << INPUT_INTEGER_BITS) - 1) * (1 << (31 - INPUT_INTEGER_BITS)) / (1 << left_shift))
    return Q4InputParams(q_in.scalar_zero_point, multiplier, left_shift, radius)


def q4_input(x, p: Q4InputParams) -> tuple[np.ndarray, np.ndarray]:
    """(x - zp, the same rescaled into Q4.27); the second is only meaningful inside the radius."""
    centred = widened(x) - p.input_zero_point
    return centred, multiply_by_quantized_multiplier(centred, p.input_multiplier, p.input_left_shift)


def q4_output(x, p: Q4InputParams, function, output_bits: int, output_zero_point: int) -> np.ndarray:
    """``function`` (gemmlowp's Q4 -> Q0 logistic or tanh) of the rescaled input, rounded to an output
    with ``output_bits`` fractional bits, clamped; -128 and 127 beyond the saturation radius."""
    centred, in_q4 = q4_input(x, p)
    out = np.clip(rounding_divide_by_pot(function(in_q4, INPUT_INTEGER_BITS), 31 - output_bits) + output_zero_point,
                  -128, 127)
    out = np.where(centred <= -p.input_range_radius, -128, np.where(centred >= p.input_range_radius, 127, out))
    return out.astype(np.int8)


def logistic_int8(x, p: Q4InputParams) -> np.ndarray:
    return q4_output(x, p, logistic, 8, OUTPUT_ZERO_POINT)


class Logistic(UnaryOp):
    name = "logistic"
    attrs_type = NoAttrs
    fixed_output_quant = (OUTPUT_SCALE, OUTPUT_ZERO_POINT)

    def run_float(self, attrs, inputs):
        return [(1.0 / (1.0 + np.exp(-inputs[0].astype(np.float64)))).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [logistic_int8(inputs[0], q4_input_params(node, graph))]


OP = Logistic()
