"""rsqrt: 1 / sqrt(x) (normalization layers written out by hand: x * rsqrt(variance + epsilon)).

int8 follows TFLite Micro's RSQRT (elementwise.cc, RsqrtEvalQuantized): v = x - zp_in; v == 0 gives
127; otherwise 1/sqrt(v) as TFLite's inverse-square-root quantized multiplier
(``fixedpoint.inv_sqrt_multiplier``), applied to 1 with 20 bits of headroom, then rescaled by
QuantizeMultiplier(1 / (sqrtf(s_in) * s_out)) with those 20 bits taken back, plus zp_out, clamped.
TFLite Micro stops with an error on a negative v; the table gives 127 there, as for 0.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.fixedpoint import inv_sqrt_multiplier, multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.base import quant_of
from edgekit.ops.elementwise import UnaryOp, widened
from edgekit.ops.quantize import NoAttrs

HEADROOM_BITS = 20  # TFLite Micro's kShift: keeps 1/sqrt(v) an integer before the output rescale


@dataclass(frozen=True)
class RsqrtInt8Params:
    input_zero_point: int
    output_zero_point: int
    multiplier: int  # of 1 / (sqrt(s_in) * s_out)
    shift: int


def rsqrt_int8_params(node, graph) -> RsqrtInt8Params:
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.outputs[0])
    s_in, s_out = np.float32(q_in.scalar_scale), np.float32(q_out.scalar_scale)
    multiplier, shift = quantize_multiplier(1.0 / float(np.sqrt(s_in) * s_out))
    return RsqrtInt8Params(q_in.scalar_zero_point, q_out.scalar_zero_point, multiplier, shift)


def rsqrt_int8(x, p: RsqrtInt8Params) -> np.ndarray:
    centred = widened(x) - p.input_zero_point
    inv_multiplier, inv_shift = inv_sqrt_multiplier(np.maximum(centred, 0))
    root = multiply_by_quantized_multiplier(1, inv_multiplier, inv_shift + HEADROOM_BITS)
    out = multiply_by_quantized_multiplier(root, p.multiplier, p.shift - HEADROOM_BITS) + p.output_zero_point
    return np.where(centred <= 0, 127, np.clip(out, -128, 127)).astype(np.int8)


class Rsqrt(UnaryOp):
    name = "rsqrt"
    attrs_type = NoAttrs

    def run_float(self, attrs, inputs):
        return [(1.0 / np.sqrt(inputs[0].astype(np.float64))).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [rsqrt_int8(inputs[0], rsqrt_int8_params(node, graph))]


OP = Rsqrt()
