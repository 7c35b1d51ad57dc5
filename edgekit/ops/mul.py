"""mul: elementwise product with broadcasting (a scalar, a per-channel vector as in squeeze-and-excite).

int8 follows TFLite's MulElementwise / BroadcastMul6DSlow: (a - zp_a) * (b - zp_b) in int32, one
rescale by s_a * s_b / s_out (double, then TFLite's QuantizeMultiplier), add zp_out, clamp to the
fused activation's range.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import activation_range, quant_of
from edgekit.ops.elementwise import BinaryOp, widened
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(frozen=True)
class MulInt8Params:
    a_offset: int
    b_offset: int
    out_offset: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


def mul_int8_params(node, graph) -> MulInt8Params:
    qa, qb, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    real = np.float64(qa.scalar_scale) * np.float64(qb.scalar_scale) / np.float64(qo.scalar_scale)
    out_mult, out_shift = quantize_multiplier(real)
    clamp = activation_range(node.attrs.activation, qo)
    return MulInt8Params(-qa.scalar_zero_point, -qb.scalar_zero_point, qo.scalar_zero_point, out_mult, out_shift,
                         clamp.act_min, clamp.act_max)


def mul_int8(a, b, *, a_offset, b_offset, out_offset, out_mult, out_shift, act_min, act_max):
    product = (widened(a) + a_offset) * (widened(b) + b_offset)
    out = multiply_by_quantized_multiplier(product, out_mult, out_shift) + out_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


class Mul(BinaryOp):
    name = "mul"
    float_fn = staticmethod(np.multiply)
    int8_params = staticmethod(mul_int8_params)
    int8_reference = staticmethod(mul_int8)

    def macs(self, attrs, in_shapes, out_shapes):
        return int(np.prod(out_shapes[0]))


OP = Mul()
