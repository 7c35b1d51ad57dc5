"""What binary elementwise ops (mul, sub, squared_difference, maximum, minimum, prelu) share.

TFLite broadcasts their operands NumPy-style (BroadcastBinaryOpSimple: a dimension of 1 repeats),
so shape inference and the float references broadcast; the int8 references are written on
broadcast NumPy arrays and therefore compute the same element as TFLite for every output index.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import OpDef, apply_activation
from edgekit.fixedpoint import multiply_by_quantized_multiplier


@dataclass
class ElementwiseAttrs:
    activation: str | None = None


def broadcast_shape(op_name: str, a: tuple, b: tuple) -> tuple:
    """The NumPy broadcast of two shapes, or an error naming both."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise UnsupportedOpError(f"{op_name} of shapes {tuple(a)} and {tuple(b)}: the shapes do not broadcast") from None


def widened(x) -> np.ndarray:
    """int8 values as int64, so that the integer arithmetic below never wraps by accident."""
    return np.asarray(x).astype(np.int64)


class BinaryOp(OpDef):
    """A two-input elementwise op with NumPy broadcasting and an optional fused activation.

    Subclasses set ``name`` and ``float_fn`` (the real-valued function of the two operands).
    """

    attrs_type = ElementwiseAttrs
    float_fn = None

    def infer_shapes(self, attrs, in_shapes):
        return [broadcast_shape(self.name, in_shapes[0], in_shapes[1])]

    def run_float(self, attrs, inputs):
        a, b = (np.asarray(x, dtype=np.float32) for x in inputs)
        return [apply_activation(type(self).float_fn(a, b), getattr(attrs, "activation", None)).astype(np.float32)]


def lifted(x, offset: int, left_shift: int, multiplier: int, shift: int) -> np.ndarray:
    """TFLite's first step of ADD/SUB/SQUARED_DIFFERENCE: (x + offset) * 2**left_shift, rescaled to a
    common scale (MultiplyByQuantizedMultiplierSmallerThanOneExp)."""
    return multiply_by_quantized_multiplier((widened(x) + offset) << left_shift, multiplier, shift)


def operand(graph, name: str, prefix: str, position: int, pointer):
    """The C expression of input ``name`` of a node, and the flash constants it needs: an activation is
    a pointer into the arena, a constant (a scalar, a per-channel vector) becomes an int8 array."""
    from edgekit.codegen.layer_calls import ConstArray

    tensor = graph.tensors[name]
    if not tensor.is_constant:
        return pointer(name), []
    const = ConstArray(f"{prefix}_in{position}", "int8_t", np.ascontiguousarray(tensor.data, dtype=np.int8))
    return const.name, [const]


def lower_broadcast_binary(node, graph, prefix, pointer, element, params) -> object:
    """The LayerCall of a binary node on the broadcast kernel: ``element`` is the op's TE arithmetic
    (codegen/kernels/elementwise_arithmetic.py) and ``params`` its int8 parameters dataclass."""
    from dataclasses import asdict

    from edgekit.codegen.kernels.broadcast_binary import BroadcastBinarySpec, broadcast_binary_kernel
    from edgekit.codegen.layer_calls import kernel_call

    a, b, out = (graph.tensors[n] for n in (node.inputs[0], node.inputs[1], node.output))
    scalars = asdict(params) if params is not None else {}
    spec = BroadcastBinarySpec.of(node.op, out.shape, a.shape, b.shape, tuple(scalars))
    a_expr, a_constants = operand(graph, node.inputs[0], prefix, 0, pointer)
    b_expr, b_constants = operand(graph, node.inputs[1], prefix, 1, pointer)
    values = {"a": a_expr, "b": b_expr, "output": pointer(node.output), **scalars}
    return kernel_call(node, broadcast_binary_kernel(spec, element), values, a_constants + b_constants)


def lower_lookup_table(node, graph, prefix, pointer, function) -> object:
    """The LayerCall of a unary int8 node as a 256-entry table: ``function`` is the op's exact int8
    reference for this node's parameters (int8 array -> int8 array)."""
    from edgekit.codegen.kernels.lookup_table import LookupTableSpec, int8_table, lookup_table_kernel
    from edgekit.codegen.layer_calls import ConstArray, kernel_call

    table = ConstArray(f"{prefix}_table", "int8_t", int8_table(function))
    values = {"input": pointer(node.inputs[0]), "table": table.name, "output": pointer(node.output)}
    kernel = lookup_table_kernel(LookupTableSpec(graph.tensors[node.output].size))
    return kernel_call(node, kernel, values, [table])
