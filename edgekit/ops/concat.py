"""concat along one axis; int8 inputs with other parameters than the output are requantized first."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef, quant_of


@dataclass
class ConcatAttrs:
    axis: int = -1


def constraint_shapes_agree(attrs, in_shapes) -> tuple[bool, str]:
    """The inputs have the same rank and agree in every dimension but the concatenation axis."""
    rank = len(in_shapes[0]) if in_shapes else 0
    ok = bool(in_shapes) and isinstance(attrs.axis, int) and -rank <= attrs.axis < rank and all(
        len(s) == rank and all(a == b for i, (a, b) in enumerate(zip(s, in_shapes[0])) if i != attrs.axis % rank)
        for s in in_shapes)
    return ok, f"axis {attrs.axis} of shapes {[list(s) for s in in_shapes]}"


class Concat(OpDef):
    name = "concat"
    attrs_type = ConcatAttrs
    constraints = (constraint_shapes_agree,)

    def infer_shapes(self, attrs, in_shapes):
        axis = attrs.axis % len(in_shapes[0])
        out = list(in_shapes[0])
        out[axis] = sum(s[axis] for s in in_shapes)
        return [tuple(out)]

    def run_float(self, attrs, inputs):
        return [np.concatenate(inputs, axis=attrs.axis)]

    def run_int8(self, node, graph, inputs):
        q_out = quant_of(graph, node.outputs[0])
        parts = [q_out.quantize(quant_of(graph, name).dequantize(x)) for name, x in zip(node.inputs, inputs)]
        return [np.concatenate(parts, axis=node.attrs.axis)]


OP = Concat()
