"""add: elementwise sum of two same-shape tensors, fused activation.

int8 follows TFLite's ADD: both inputs are lifted by 2**20 and rescaled to a common scale of
twice the larger input scale, summed, then rescaled to the output.

In place (``buffer_share``, on by default): out[k] depends only on a[k] and b[k], and the kernel
reads both before it writes out[k], so the output may overwrite an input that dies here. For the
same reason it runs row by row on patches (``row_wise``).
"""

from dataclasses import asdict, dataclass

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.elementwise import lifted
from edgekit.ops.base import BufferShare, OpDef, activation_range, apply_activation, quant_of

LEFT_SHIFT = 20


@dataclass
class AddAttrs:
    activation: str | None = None


@dataclass(frozen=True)
class AddInt8Params:
    """TFLite's ArithmeticParams for int8 ADD; the add kernel's C scalars, in this order."""

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


def add_int8_params(node, graph) -> AddInt8Params:
    qa, qb, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    sa, sb, so = (np.float64(q.scalar_scale) for q in (qa, qb, qo))
    twice_max = 2 * max(sa, sb)
    a_mult, a_shift = quantize_multiplier(sa / twice_max)
    b_mult, b_shift = quantize_multiplier(sb / twice_max)
    out_mult, out_shift = quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * so))
    clamp = activation_range(node.attrs.activation, qo)
    return AddInt8Params(-qa.scalar_zero_point, a_mult, a_shift, -qb.scalar_zero_point, b_mult, b_shift,
                         qo.scalar_zero_point, out_mult, out_shift, clamp.act_min, clamp.act_max)


def add_int8(a, b, *, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift, out_offset, out_mult, out_shift,
             act_min, act_max):
    """TFLite reference_integer_ops::AddElementwise for int8."""
    total = lifted(a, a_offset, LEFT_SHIFT, a_mult, a_shift) + lifted(b, b_offset, LEFT_SHIFT, b_mult, b_shift)
    out = multiply_by_quantized_multiplier(total, out_mult, out_shift) + out_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def constraint_same_shapes(attrs, in_shapes) -> tuple[bool, str]:
    """Both operands must have the same shape: broadcasting adds are not supported; make both operands
    the same shape."""
    return tuple(in_shapes[0]) == tuple(in_shapes[1]), f"shapes {in_shapes[0]} and {in_shapes[1]}"


class Add(OpDef):
    name = "add"
    attrs_type = AddAttrs
    fuses_activation = True
    buffer_share = BufferShare("in-place add", True, lambda node: (0, 1), "inplace_add")
    patchable = True
    constraints = (constraint_same_shapes,)

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        return [apply_activation(inputs[0] + inputs[1], attrs.activation).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        p = add_int8_params(node, graph)
        return [add_int8(inputs[0], inputs[1], **p.__dict__)]

    def row_wise(self, node, graph):
        return True

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """One kernel for any aliasing of ``output`` with ``a`` or ``b`` (see the module doc)."""
        from edgekit.codegen.kernels.add import AddSpec, add_kernel
        from edgekit.codegen.layer_calls import kernel_call

        values = {"a": pointer(node.inputs[0]), "b": pointer(node.inputs[1]), "output": pointer(node.output),
                  **asdict(add_int8_params(node, graph))}
        return kernel_call(node, add_kernel(AddSpec(graph.tensors[node.output].size)), values)


OP = Add()
