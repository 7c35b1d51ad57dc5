"""reshape: same bytes, new shape (row-major, so NHWC flatten order).

The output is always a read-only view of the input's buffer (``buffer_share``): no code runs.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import GraphError
from edgekit.ops.base import BufferShare, OpDef


@dataclass
class ReshapeAttrs:
    shape: tuple[int, ...] = ()


class Reshape(OpDef):
    name = "reshape"
    attrs_type = ReshapeAttrs
    same_quant_as_input = True
    buffer_share = BufferShare("reshape view", False, lambda node: (0,))
    any_dtype = True

    def infer_shapes(self, attrs, in_shapes):
        if int(np.prod(attrs.shape)) != int(np.prod(in_shapes[0])):
            raise GraphError(f"reshape of {in_shapes[0]} to {attrs.shape} changes the number of elements")
        return [tuple(attrs.shape)]

    def run_float(self, attrs, inputs):
        return [inputs[0].reshape(attrs.shape)]

    def run_int8(self, node, graph, inputs):
        return [inputs[0].reshape(node.attrs.shape)]

    def is_identity(self, node, graph):
        return tuple(node.attrs.shape) == tuple(graph.tensors[node.inputs[0]].shape)

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.layer_calls import view_call

        return view_call(node)


OP = Reshape()
