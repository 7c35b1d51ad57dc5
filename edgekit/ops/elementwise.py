"""What elementwise ops share: the binary ones (mul, sub, squared_difference, maximum, minimum,
prelu) and the unary int8 -> int8 ones (logistic, tanh, hard_swish, leaky_relu, clamp).

TFLite broadcasts binary operands NumPy-style (BroadcastBinaryOpSimple: a dimension of 1 repeats),
so shape inference and the float references broadcast; the int8 references are written on
broadcast NumPy arrays and therefore compute the same element as TFLite for every output index.
Binary ops lower to one broadcast kernel (codegen/kernels/broadcast_binary.py) with their own
per-element arithmetic; unary ops lower to a 256-entry table made from their int8 reference.
"""

from dataclasses import asdict, dataclass

import numpy as np

from edgekit.ops.base import BufferShare, OpDef, apply_activation
from edgekit.fixedpoint import multiply_by_quantized_multiplier


@dataclass
class ElementwiseAttrs:
    activation: str | None = None


def constraint_operands_broadcast(attrs, in_shapes) -> tuple[bool, str]:
    """The two operands' shapes must broadcast (NumPy's rules: a dimension of 1 repeats, missing
    leading dimensions count as 1)."""
    try:
        np.broadcast_shapes(tuple(in_shapes[0]), tuple(in_shapes[1]))
    except ValueError:
        return False, f"shapes {tuple(in_shapes[0])} and {tuple(in_shapes[1])}"
    return True, ""


def constraint_pointwise_operands(node, graph) -> tuple[bool, str]:
    """On patches, every activation operand must have the output's shape; only a constant (a scalar, a
    per-channel vector) may be broadcast."""
    out_shape = graph.tensors[node.output].shape
    for name in node.inputs:
        tensor = graph.tensors[name]
        if tensor.is_constant:
            aligned = (1,) * (len(out_shape) - len(tensor.shape)) + tuple(tensor.shape)
            if len(aligned) != 4 or aligned[:3] != (1, 1, 1):
                return False, f"constant {name} of shape {tuple(tensor.shape)} varies over space"
        elif tensor.shape != out_shape:
            return False, f"operand {name} of shape {tensor.shape}, output {out_shape}"
    return True, ""


def widened(x) -> np.ndarray:
    """int8 values as int64, so that the integer arithmetic below never wraps by accident."""
    return np.asarray(x).astype(np.int64)


class BinaryOp(OpDef):
    """A two-input elementwise op with NumPy broadcasting and an optional fused activation.

    Subclasses set ``name``, ``float_fn`` (the real function of the two operands), ``int8_params``
    (node, graph -> its int8 parameters dataclass, or None when it has none) and ``int8_reference``
    (a, b, **parameters -> int8, TFLite's arithmetic). The kernel's per-element arithmetic is
    ``<name>_element`` in codegen/kernels/elementwise_arithmetic.py, on the same parameters.
    """

    attrs_type = ElementwiseAttrs
    constraints = (constraint_operands_broadcast,)
    patchable = True  # pointwise, when its operands allow (``patch_constraints``)
    patch_constraints = (constraint_pointwise_operands,)
    #: out[i] is computed from a[i] (and b[i], or a constant) after both are read, in order, so the
    #: output may overwrite an activation operand of its shape that dies here
    buffer_share = BufferShare("in-place elementwise", True, lambda node: (0, 1), streams=True, elementwise=True)
    float_fn = None
    int8_params = None
    int8_reference = None

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(int(d) for d in np.broadcast_shapes(tuple(in_shapes[0]), tuple(in_shapes[1])))]

    def run_float(self, attrs, inputs):
        a, b = (np.asarray(x, dtype=np.float32) for x in inputs)
        return [apply_activation(type(self).float_fn(a, b), attrs.activation).astype(np.float32)]

    def _params(self, node, graph) -> dict:
        make = type(self).int8_params
        return asdict(make(node, graph)) if make is not None else {}

    def run_int8(self, node, graph, inputs):
        return [type(self).int8_reference(inputs[0], inputs[1], **self._params(node, graph))]

    def row_wise(self, node, graph):
        """Every activation operand has the output's shape and constants vary over channels only: then
        output row r needs row r of each operand, and the op may run one row per call (on patches)."""
        return len(graph.tensors[node.output].shape) == 4 and constraint_pointwise_operands(node, graph)[0]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels import elementwise_arithmetic
        from edgekit.codegen.kernels.broadcast_binary import BroadcastBinarySpec, broadcast_binary_kernel
        from edgekit.codegen.layer_calls import kernel_call

        a, b, out = (graph.tensors[n] for n in (node.inputs[0], node.inputs[1], node.output))
        scalars = self._params(node, graph)
        spec = BroadcastBinarySpec.of(node.op, out.shape, a.shape, b.shape, tuple(scalars))
        element = getattr(elementwise_arithmetic, f"{self.name}_element")
        a_expr, a_constants = operand(graph, node.inputs[0], prefix, 0, pointer)
        b_expr, b_constants = operand(graph, node.inputs[1], prefix, 1, pointer)
        values = {"a": a_expr, "b": b_expr, "output": pointer(node.output), **scalars}
        return kernel_call(node, broadcast_binary_kernel(spec, element), values, a_constants + b_constants)


class UnaryOp(OpDef):
    """A one-input elementwise op (same shape out). Its int8 output depends on one int8 input value
    and the node's fixed parameters, so the firmware looks it up in a 256-entry table made by running
    ``run_int8`` on every int8 value at compile time (codegen/kernels/lookup_table.py).
    Pointwise, so it runs on patches as it is, row by row, and in place (the table kernel reads
    input[i] before it writes output[i], in order)."""

    patchable = True
    buffer_share = BufferShare("in-place table lookup", True, lambda node: (0,), streams=True, elementwise=True)

    def row_wise(self, node, graph):
        return len(graph.tensors[node.output].shape) == 4

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.lookup_table import LookupTableSpec, int8_table, lookup_table_kernel
        from edgekit.codegen.layer_calls import ConstArray, kernel_call

        table = ConstArray(f"{prefix}_table", "int8_t", int8_table(lambda x: self.run_int8(node, graph, [x])[0]))
        values = {"input": pointer(node.inputs[0]), "table": table.name, "output": pointer(node.output)}
        kernel = lookup_table_kernel(LookupTableSpec(graph.tensors[node.output].size))
        return kernel_call(node, kernel, values, [table])


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
