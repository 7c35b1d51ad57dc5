"""gather: pick slices of one axis by constant indices (TFLite's GATHER with batch_dims 0): output
shape = input shape before ``axis`` + the indices' shape + input shape after ``axis``.

The data moves unchanged (int8 keeps its quantization). Indices are attrs, as a slice's ranges are:
TFLite models gather with constant indices (channel shuffles, picking outputs); an index computed
at run time is refused by the importer.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import DataMovementOp


@dataclass
class GatherAttrs:
    axis: int = 0
    indices: tuple[int, ...] = ()  # flattened, C order
    indices_shape: tuple[int, ...] = ()


def constraint_indices_inside_the_axis(attrs, in_shapes) -> tuple[bool, str]:
    """Every index must lie in [0, size of the gathered axis)."""
    shape = in_shapes[0]
    if not -len(shape) <= attrs.axis < len(shape):
        return False, f"axis {attrs.axis} of a {len(shape)}-D input"
    size = shape[attrs.axis]
    bad = [i for i in attrs.indices if not 0 <= i < size]
    return not bad, f"index {bad[0] if bad else ''} on an axis of {size}"


def constraint_indices_fill_their_shape(attrs, in_shapes) -> tuple[bool, str]:
    """The indices are as many as their shape holds (a saved graph may disagree with itself)."""
    shape = tuple(attrs.indices_shape)
    ok = all(isinstance(d, int) and d >= 0 for d in shape) and int(np.prod(shape, dtype=object)) == len(attrs.indices)
    return ok, f"{len(attrs.indices)} indices for shape {list(shape)}"


def indices_array(attrs) -> np.ndarray:
    return np.asarray(attrs.indices, np.int32).reshape(attrs.indices_shape)


class Gather(DataMovementOp):
    name = "gather"
    attrs_type = GatherAttrs
    constraints = (constraint_indices_fill_their_shape, constraint_indices_inside_the_axis)

    def infer_shapes(self, attrs, in_shapes):
        shape = tuple(in_shapes[0])
        axis = attrs.axis % len(shape)
        return [shape[:axis] + tuple(attrs.indices_shape) + shape[axis + 1:]]

    def move(self, attrs, x):
        return np.ascontiguousarray(np.take(x, indices_array(attrs), axis=attrs.axis))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.gather import GatherSpec, gather_kernel
        from edgekit.codegen.layer_calls import ConstArray, kernel_call

        shape = tuple(int(d) for d in graph.tensors[node.inputs[0]].shape)
        attrs = node.attrs
        spec = GatherSpec(shape, attrs.axis % len(shape), tuple(attrs.indices_shape))
        indices = ConstArray(f"{prefix}_indices", "int32_t", indices_array(attrs))
        values = {"input": pointer(node.inputs[0]), "indices": indices.name, "output": pointer(node.output)}
        return kernel_call(node, gather_kernel(spec), values, [indices])


OP = Gather()
