"""strided_slice: a static box of every axis (start, stop, step, Python ``range`` semantics),
dropping the axes listed in ``squeeze``.

TFLite's STRIDED_SLICE (with its begin/end/shrink masks), SLICE and SPLIT/SPLIT_V all import as this
op with resolved ranges: the data moves unchanged, so int8 keeps its quantization.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import DataMovementOp


@dataclass
class StridedSliceAttrs:
    ranges: tuple[tuple[int, int, int], ...] = ()  # per axis: range(start, stop, step) of kept indices
    squeeze: tuple[int, ...] = ()  # axes of length 1 dropped from the result


def kept_indices(attrs: StridedSliceAttrs, shape) -> list[np.ndarray]:
    return [np.arange(*r) for r in attrs.ranges] + [np.arange(d) for d in shape[len(attrs.ranges):]]


def constraint_ranges_inside_the_input(attrs, in_shapes) -> tuple[bool, str]:
    """Every axis's range must keep at least one index, all inside the input; squeezed axes must keep one."""
    shape = in_shapes[0]
    if len(attrs.ranges) > len(shape):
        return False, f"{len(attrs.ranges)} ranges for a {len(shape)}-D input"
    for axis, (r, size) in enumerate(zip(attrs.ranges, shape)):
        kept = range(*r)
        if len(kept) == 0 or kept[0] < 0 or kept[-1] >= size or (axis in attrs.squeeze and len(kept) != 1):
            return False, f"range {r} of axis {axis} (size {size})"
    return True, ""


class StridedSlice(DataMovementOp):
    name = "strided_slice"
    attrs_type = StridedSliceAttrs
    constraints = (constraint_ranges_inside_the_input,)

    def infer_shapes(self, attrs, in_shapes):
        shape = in_shapes[0]
        sliced = [len(range(*r)) for r in attrs.ranges] + list(shape[len(attrs.ranges):])
        return [tuple(d for axis, d in enumerate(sliced) if axis not in attrs.squeeze)]

    def move(self, attrs, x):
        out = x[np.ix_(*kept_indices(attrs, x.shape))]
        return np.ascontiguousarray(out.reshape(self.infer_shapes(attrs, [x.shape])[0]))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.strided_slice import StridedSliceSpec, strided_slice_kernel
        from edgekit.codegen.layer_calls import kernel_call

        shape = graph.tensors[node.inputs[0]].shape
        ranges = tuple(range(*r) for r in node.attrs.ranges) + tuple(range(d) for d in shape[len(node.attrs.ranges):])
        spec = StridedSliceSpec(tuple(int(d) for d in shape), tuple((r.start, r.stop, r.step) for r in ranges))
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output)}
        return kernel_call(node, strided_slice_kernel(spec), values)


OP = StridedSlice()
