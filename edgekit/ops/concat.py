"""concat along one axis.

int8 copies bytes, as TFLite Micro's CONCATENATION does, so every input carries the output's
quantization (``same_quant_inputs``): TF's converter arranges it, and so does edgekit's quantizer by
inserting an int8 -> int8 QUANTIZE before an input quantized otherwise.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
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
    same_quant_inputs = True

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

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """Bytes side by side, as TFLite Micro's CONCATENATION: every input must share the output's
        quantization (TFLite's converter arranges it), or the bytes would need requantizing."""
        from edgekit.codegen.kernels.concat import ConcatSpec, concat_kernel
        from edgekit.codegen.layer_calls import kernel_call

        q_out = quant_of(graph, node.output)
        for name in node.inputs:
            q = quant_of(graph, name)
            if (q.scalar_scale, q.scalar_zero_point) != (q_out.scalar_scale, q_out.scalar_zero_point):
                raise UnsupportedOpError(f"concat node {node.name}: input {name} is quantized differently from the "
                                         "output; the concat kernel copies bytes, so all must share one quantization")
        shapes = tuple(tuple(int(d) for d in graph.tensors[name].shape) for name in node.inputs)
        spec = ConcatSpec(shapes, node.attrs.axis % len(shapes[0]))
        values = {f"input{k}": pointer(name) for k, name in enumerate(node.inputs)}
        values["output"] = pointer(node.output)
        return kernel_call(node, concat_kernel(spec), values)


OP = Concat()
