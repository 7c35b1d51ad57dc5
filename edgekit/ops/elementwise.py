"""What binary elementwise ops (mul, sub, squared_difference, maximum, minimum, prelu) share.

TFLite broadcasts their operands NumPy-style (BroadcastBinaryOpSimple: a dimension of 1 repeats),
so shape inference and the float references broadcast; the int8 references are written on
broadcast NumPy arrays and therefore compute the same element as TFLite for every output index.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import OpDef, apply_activation
from edgekit.quantize.fixedpoint import multiply_by_quantized_multiplier


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
