"""transpose: permute axes (e.g. an NCHW model input to NHWC)."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import DataMovementOp


@dataclass
class TransposeAttrs:
    perm: tuple[int, ...] = ()


def constraint_permutation(attrs, in_shapes) -> tuple[bool, str]:
    """The permutation names each axis of the input once."""
    return sorted(attrs.perm) == list(range(len(in_shapes[0]))), f"perm {attrs.perm} of shape {list(in_shapes[0])}"


class Transpose(DataMovementOp):
    name = "transpose"
    attrs_type = TransposeAttrs
    constraints = (constraint_permutation,)

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0][p] for p in attrs.perm)]

    def move(self, attrs, x):
        return np.ascontiguousarray(x.transpose(attrs.perm))

    def is_identity(self, node, graph):
        return tuple(node.attrs.perm) == tuple(range(len(node.attrs.perm)))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.transpose import TransposeSpec, transpose_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        spec = TransposeSpec(tuple(int(d) for d in x.shape), tuple(int(p) for p in node.attrs.perm))
        return kernel_call(node, transpose_kernel(spec), {"input": pointer(node.inputs[0]), "output": pointer(node.output)})


OP = Transpose()
