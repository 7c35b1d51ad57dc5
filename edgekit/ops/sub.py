"""sub: elementwise difference with broadcasting.

int8 follows TFLite Micro's SUB: both inputs are lifted by 2**20 and rescaled to a common scale of
twice the larger input scale, subtracted, then rescaled to the output. Unlike ADD, TFLite Micro
forms SUB's real multipliers in float32 (``input_scale / twice_max`` is a float division), so the
Q31 multipliers are derived from float32 quotients here too.
"""

import numpy as np

from edgekit.ops.base import activation_range, quant_of
from edgekit.ops.add import AddInt8Params
from edgekit.ops.elementwise import BinaryOp, lifted
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

LEFT_SHIFT = 20


def sub_int8_params(node, graph) -> AddInt8Params:
    """ADD's parameters, with SUB's float32 multipliers."""
    qa, qb, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    sa, sb, so = (np.float32(q.scalar_scale) for q in (qa, qb, qo))
    twice_max = np.float32(2) * max(sa, sb)
    a_mult, a_shift = quantize_multiplier(float(np.float32(sa / twice_max)))
    b_mult, b_shift = quantize_multiplier(float(np.float32(sb / twice_max)))
    out_mult, out_shift = quantize_multiplier(float(np.float32(twice_max / (np.float32(1 << LEFT_SHIFT) * so))))
    clamp = activation_range(node.attrs.activation, qo)
    return AddInt8Params(-qa.scalar_zero_point, a_mult, a_shift, -qb.scalar_zero_point, b_mult, b_shift,
                         qo.scalar_zero_point, out_mult, out_shift, clamp.act_min, clamp.act_max)


def sub_int8(a, b, *, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift, out_offset, out_mult, out_shift,
             act_min, act_max):
    """TFLite's SubElementwise (and BroadcastQuantSubSlow) for int8."""
    difference = lifted(a, a_offset, LEFT_SHIFT, a_mult, a_shift) - lifted(b, b_offset, LEFT_SHIFT, b_mult, b_shift)
    out = multiply_by_quantized_multiplier(difference, out_mult, out_shift) + out_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


class Sub(BinaryOp):
    name = "sub"
    float_fn = staticmethod(np.subtract)
    int8_params = staticmethod(sub_int8_params)
    int8_reference = staticmethod(sub_int8)


OP = Sub()
