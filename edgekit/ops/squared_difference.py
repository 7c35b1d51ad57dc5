"""squared_difference: (a - b)**2 elementwise with broadcasting.

int8 follows TFLite Micro's SQUARED_DIFFERENCE: both inputs are lifted by 2**7 (so that 255**2 * 2**14
fits int32) and rescaled to a common scale of twice the larger input scale, subtracted, squared in
int32, then rescaled by twice_max**2 / (2**14 * s_out) to the output.
"""

import numpy as np

from edgekit.ops.base import quant_of
from edgekit.ops.add import AddInt8Params
from edgekit.ops.elementwise import BinaryOp, lifted
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

LEFT_SHIFT = 7


def squared_difference_int8_params(node, graph) -> AddInt8Params:
    """ADD's parameters (no fused activation: the full int8 range), with the left shift of 7."""
    qa, qb, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    twice_max = 2.0 * np.float64(max(np.float32(qa.scalar_scale), np.float32(qb.scalar_scale)))
    a_mult, a_shift = quantize_multiplier(np.float64(qa.scalar_scale) / twice_max)
    b_mult, b_shift = quantize_multiplier(np.float64(qb.scalar_scale) / twice_max)
    denominator = np.float64(np.float32(1 << (2 * LEFT_SHIFT)) * np.float32(qo.scalar_scale))  # a float product in TFLM
    out_mult, out_shift = quantize_multiplier(twice_max * twice_max / denominator)
    return AddInt8Params(-qa.scalar_zero_point, a_mult, a_shift, -qb.scalar_zero_point, b_mult, b_shift,
                         qo.scalar_zero_point, out_mult, out_shift, -128, 127)


def squared_difference_int8(a, b, *, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift, out_offset, out_mult,
                            out_shift, act_min, act_max):
    difference = lifted(a, a_offset, LEFT_SHIFT, a_mult, a_shift) - lifted(b, b_offset, LEFT_SHIFT, b_mult, b_shift)
    out = multiply_by_quantized_multiplier(difference * difference, out_mult, out_shift) + out_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


class SquaredDifference(BinaryOp):
    name = "squared_difference"
    int8_params = staticmethod(squared_difference_int8_params)
    int8_reference = staticmethod(squared_difference_int8)

    @staticmethod
    def float_fn(a, b):
        return np.square(a - b)


OP = SquaredDifference()
