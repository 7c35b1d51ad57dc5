"""arg_max and arg_min along one axis (a classifier's label, a segmentation map's class per pixel),
that axis dropped; int32 indices.

TFLite Micro's ARG_MAX/ARG_MIN (reference_ops::ArgMinMax) compare raw int8 values, which order as
the real values do (one scale, positive), and keep the first index on ties (a strict comparison);
NumPy's argmax/argmin do the same. TFLite Micro writes int32 indices only (an int64 output is an
error there), so the output is int32: the op converts dtype (``any_dtype``), and since no int8 kernel
reads int32, it ends the model (its output is a model output).
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef


@dataclass
class ArgMinMaxAttrs:
    axis: int = -1


def constraint_axis_of_the_input(attrs, in_shapes) -> tuple[bool, str]:
    """The axis must be one of the input's (counted from 0)."""
    rank = len(in_shapes[0])
    return 0 <= attrs.axis < rank, f"axis {attrs.axis} of a {rank}-D tensor"


class ArgMinMax(OpDef):
    """The index of the largest (arg_max) or smallest (arg_min) value along ``attrs.axis``."""

    attrs_type = ArgMinMaxAttrs
    constraints = (constraint_axis_of_the_input,)
    any_dtype = True  # int8 in, int32 out

    def __init__(self, name: str, pick):
        self.name = name
        self.pick = pick  # np.argmax or np.argmin

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(d for a, d in enumerate(in_shapes[0]) if a != attrs.axis)]

    def run_float(self, attrs, inputs):
        return [self.pick(inputs[0], axis=attrs.axis).astype(np.int32)]

    def run_int8(self, node, graph, inputs):
        return [self.pick(inputs[0], axis=node.attrs.axis).astype(np.int32)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.arg_min_max import arg_min_max_kernel
        from edgekit.codegen.kernels.mean import MeanSpec
        from edgekit.codegen.layer_calls import kernel_call
        from edgekit.ops.quantize import typed_pointer

        spec = MeanSpec(tuple(int(d) for d in graph.tensors[node.inputs[0]].shape), (node.attrs.axis,))
        return kernel_call(node, arg_min_max_kernel(self.name, spec),
                           {"input": pointer(node.inputs[0]), "output": typed_pointer(pointer, graph, node.output)})


ARG_MAX = ArgMinMax("arg_max", np.argmax)
ARG_MIN = ArgMinMax("arg_min", np.argmin)
