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


OP = Transpose()
