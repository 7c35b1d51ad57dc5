"""transpose: permute axes (e.g. an NCHW model input to NHWC)."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef


@dataclass
class TransposeAttrs:
    perm: tuple[int, ...] = ()


class Transpose(OpDef):
    name = "transpose"
    attrs_type = TransposeAttrs
    same_quant_as_input = True

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0][p] for p in attrs.perm)]

    def run_float(self, attrs, inputs):
        return [np.ascontiguousarray(inputs[0].transpose(attrs.perm))]

    def run_int8(self, node, graph, inputs):
        return [np.ascontiguousarray(inputs[0].transpose(node.attrs.perm))]

    def is_identity(self, node, graph):
        return tuple(node.attrs.perm) == tuple(range(len(node.attrs.perm)))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.transpose import TransposeSpec, transpose_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        spec = TransposeSpec(tuple(int(d) for d in x.shape), tuple(int(p) for p in node.attrs.perm))
        return kernel_call(node, transpose_kernel(spec), {"input": pointer(node.inputs[0]), "output": pointer(node.output)})


OP = Transpose()
