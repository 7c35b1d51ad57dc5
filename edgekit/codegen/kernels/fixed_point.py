"""TFLite's fixed-point requantization as TE expressions, shared by every int8 kernel.

The arithmetic mirrors :mod:`edgekit.quantize.fixedpoint` (the NumPy golden model) operation for
operation: int64 intermediates where a product could overflow, C truncating division in the
doubling high multiply, arithmetic right shifts with a rounding mask. Shifts are runtime values
(per-channel arrays), so the left/right split happens in the expression, not in Python.
Intermediate values are ``Let``-bound so the C reads as a sequence of named steps.

Conditions are computed with sign-bit shifts, never with comparisons, ``Select``, ``max`` or ``min``:
TVM 0.27's CompactBufferAllocation expands each ``Let`` at every use while bounding expressions, and
bounding comparisons there is exponential in their nesting (minutes for the add kernel's three
chained requantizations). The final clamp is the one max/min. (Also, TVM's simplifier
folds ``x == INT32_MIN`` to false for an int32 ``x``, so that test could not be written directly.)
"""

from tvm import tirx


def _int64(value: int):
    return tirx.const(value, "int64")


def _sign_bit(x, dtype: str):
    """1 where ``x`` is negative, else 0 (an arithmetic shift, not a comparison: see the module docstring)."""
    bits = 64 if dtype == "int64" else 32
    return (x.astype(dtype) >> tirx.const(bits - 1, dtype)) & tirx.const(1, dtype)


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

    The quotient lies in [-2**31 + 1, 2**31]; it reaches 2**31 only for INT32_MIN * INT32_MIN, and
    subtracting ``(quotient + 2**31) >> 32`` (1 exactly then) saturates it to INT32_MAX.
    """

    def high_of(product):
        nudge = _int64(1 << 30) - _sign_bit(product, "int64") * _int64((1 << 31) - 1)
        return let("quotient", tirx.truncdiv(product + nudge, _int64(1 << 31)),
                   lambda q: (q - ((q + _int64(1 << 31)) >> _int64(32))).astype("int32"))

    return let("product", a.astype("int64") * b.astype("int64"), high_of)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT of an int32 expression; the mask is int64 so exponent 31 is defined."""

    def rounded(mask):
        remainder = x.astype("int64") & mask
        threshold = (mask >> _int64(1)) + _sign_bit(x, "int64")
        round_up = _sign_bit(threshold - remainder, "int64")  # remainder > threshold
        return (x >> exponent) + round_up.astype("int32")

    return let("mask", (_int64(1) << exponent.astype("int64")) - _int64(1), rounded)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier with a runtime (e.g. per-channel) shift."""

    def scaled(shift_value):
        left_shift = shift_value * _sign_bit(-shift_value, "int32")  # max(shift, 0)
        right_shift = -shift_value * _sign_bit(shift_value, "int32")  # max(-shift, 0)
        shifted = (x.astype("int64") * (_int64(1) << left_shift.astype("int64"))).astype("int32")

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
