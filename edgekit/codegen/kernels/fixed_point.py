"""TFLite's fixed-point requantization as TE expressions, shared by every int8 kernel.

The arithmetic mirrors :mod:`edgekit.quantize.fixedpoint` (the NumPy golden model) operation for
operation: int64 intermediates where a product could overflow, C truncating division in the
doubling high multiply, arithmetic right shifts with a rounding mask. Shifts are runtime values
(per-channel arrays), so the left/right split happens in the expression, not in Python.
Intermediate values are ``Let``-bound so the C reads as a sequence of named steps, and conditions
become 0/1 integers instead of ``Select``, ``max`` or ``min``: TVM 0.27's CompactBufferAllocation
expands every ``Let`` at each use while bounding expressions, and bounding a nested max/min or Select is
exponential (seconds for two chained requantizations, minutes for the add kernel).

TVM 0.27's simplifier assumes an int32 value never equals INT32_MIN (it folds ``x == INT32_MIN`` to
false), so the saturation test compares in int64.
"""

from tvm import tirx

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _int64(value: int):
    return tirx.const(value, "int64")


def _int32(value: int):
    return tirx.const(value, "int32")


def let(name: str, value, body_of):
    """``body_of(v)`` with ``v`` bound to ``value`` once (a named local in the C).

    An expression holding a ``Let`` must appear once only (TIR forbids redefining its variable), so
    helpers bind any input they read twice.
    """
    value = tirx.convert(value)
    var = tirx.Var(name, value.ty)
    return tirx.Let(var, value, body_of(var))


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul of two int32 expressions.

    The only overflowing case, INT32_MIN * INT32_MIN, gives 2**31 before the narrowing; subtracting the
    overflow flag turns it into INT32_MAX, the saturated result.
    """

    def high_of(product):
        nudge = _int64(1 << 30) - (product < _int64(0)).astype("int64") * _int64((1 << 31) - 1)
        overflow = tirx.all(a.astype("int64") == _int64(INT32_MIN), b.astype("int64") == _int64(INT32_MIN))
        return (tirx.truncdiv(product + nudge, _int64(1 << 31)) - overflow.astype("int64")).astype("int32")

    return let("product", a.astype("int64") * b.astype("int64"), high_of)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT of an int32 expression; the mask is int64 so exponent 31 is defined."""

    def rounded(mask):
        remainder = x.astype("int64") & mask
        threshold = (mask >> _int64(1)) + (x < 0).astype("int64")
        return (x >> exponent) + (remainder > threshold).astype("int32")

    return let("mask", (_int64(1) << exponent.astype("int64")) - _int64(1), rounded)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier with a runtime (e.g. per-channel) shift."""

    def scaled(shift_value):
        left_shift = (shift_value * (shift_value > 0).astype("int32")).astype("int64")
        shifted = (x.astype("int64") * (_int64(1) << left_shift)).astype("int32")
        right_shift = -shift_value * (shift_value < 0).astype("int32")

        def rescaled(shifted_value):
            high = saturating_rounding_doubling_high_mul(shifted_value, multiplier)
            return let("high", high, lambda high_value: rounding_divide_by_pot(high_value, right_shift))

        return let("shifted", shifted, rescaled)

    return let("shift_value", shift, scaled)


def clamp_to_int8(x, act_min, act_max):
    """Fused activation clamp of an int32 expression, then the narrowing to int8."""
    return tirx.min(tirx.max(x, act_min), act_max).astype("int8")


def requantize(acc, multiplier, shift, output_offset, act_min, act_max):
    """int32 accumulator -> int8 output: rescale, add the output zero point, clamp."""
    return clamp_to_int8(multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset, act_min, act_max)
