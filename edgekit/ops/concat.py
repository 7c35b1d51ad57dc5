"""concat along one axis; int8 inputs with other parameters than the output are requantized first."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef, quant_of


@dataclass
class ConcatAttrs:
    axis: int = -1


class Concat(OpDef):
    name = "concat"
    attrs_type = ConcatAttrs

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
