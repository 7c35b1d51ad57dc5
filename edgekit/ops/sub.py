"""sub: elementwise difference with broadcasting.

int8 follows TFLite Micro's SUB: both inputs are lifted by 2**20 and rescaled to a common scale of
twice the larger input scale, subtracted, then rescaled to the output. Unlike ADD, TFLite Micro
forms SUB's real multipliers in float32 (``input_scale / twice_max`` is a float division), so the
Q31 multipliers are derived from float32 quotients here too.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import activation_range, quant_of
from edgekit.ops.elementwise import BinaryOp, lifted, lower_broadcast_binary
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

LEFT_SHIFT = 20


@dataclass(frozen=True)
class SubInt8Params:
    a_offset: int
    a_mult: int
    a_shift: int
    b_offset: int
    b_mult: int
    b_shift: int
    out_offset: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


def sub_int8_params(node, graph) -> SubInt8Params:
    qa, qb, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    sa, sb, so = (np.float32(q.scalar_scale) for q in (qa, qb, qo))
    twice_max = np.float32(2) * max(sa, sb)
    a_mult, a_shift = quantize_multiplier(float(np.float32(sa / twice_max)))
    b_mult, b_shift = quantize_multiplier(float(np.float32(sb / twice_max)))
    out_mult, out_shift = quantize_multiplier(float(np.float32(twice_max / (np.float32(1 << LEFT_SHIFT) * so))))
    clamp = activation_range(node.attrs.activation, qo)
    return SubInt8Params(-qa.scalar_zero_point, a_mult, a_shift, -qb.scalar_zero_point, b_mult, b_shift,
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

    def run_int8(self, node, graph, inputs):
        return [sub_int8(inputs[0], inputs[1], **sub_int8_params(node, graph).__dict__)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.elementwise_arithmetic import sub_element

        return lower_broadcast_binary(node, graph, prefix, pointer, sub_element, sub_int8_params(node, graph))


OP = Sub()
