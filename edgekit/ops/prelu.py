"""prelu: x for x >= 0, alpha * x below, with a learned alpha that broadcasts (per channel usually).

int8 follows TFLite's BroadcastPrelu4DSlow: x - zp_in is rescaled by s_in / s_out where it is
non-negative; elsewhere (x - zp_in) * (alpha - zp_alpha) is rescaled by s_in * s_alpha / s_out.
The second input is alpha (a constant in practice).
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import quant_of
from edgekit.ops.elementwise import BinaryOp, widened
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(frozen=True)
class PreluInt8Params:
    input_offset: int
    alpha_offset: int
    output_offset: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


def prelu_int8_params(node, graph) -> PreluInt8Params:
    q_in, q_alpha, q_out = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    s_in, s_alpha, s_out = (np.float64(q.scale[0]) for q in (q_in, q_alpha, q_out))
    identity_multiplier, identity_shift = quantize_multiplier(s_in / s_out)
    alpha_multiplier, alpha_shift = quantize_multiplier(s_in * s_alpha / s_out)
    return PreluInt8Params(-q_in.scalar_zero_point, -int(q_alpha.zero_point[0]), q_out.scalar_zero_point,
                           identity_multiplier, identity_shift, alpha_multiplier, alpha_shift)


def prelu_int8(x, alpha, *, input_offset, alpha_offset, output_offset, identity_multiplier, identity_shift,
               alpha_multiplier, alpha_shift) -> np.ndarray:
    centred = widened(x) + input_offset
    identity = multiply_by_quantized_multiplier(centred, identity_multiplier, identity_shift)
    scaled = multiply_by_quantized_multiplier(centred * (widened(alpha) + alpha_offset), alpha_multiplier, alpha_shift)
    out = np.where(centred >= 0, identity, scaled) + output_offset
    return np.clip(out, -128, 127).astype(np.int8)


class Prelu(BinaryOp):
    name = "prelu"
    int8_params = staticmethod(prelu_int8_params)
    int8_reference = staticmethod(prelu_int8)

    @staticmethod
    def float_fn(x, alpha):
        return np.where(x >= 0, x, x * alpha)


OP = Prelu()
