"""TFLite's fixed-point requantization as TE expressions, shared by every int8 kernel.

The arithmetic mirrors :mod:`edgekit.fixedpoint` (the NumPy golden model) operation for
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


# gemmlowp's fixed-point transcendental functions (TFLite's integer softmax), mirroring the NumPy
# versions in edgekit.fixedpoint step for step. A value in format Qm has m integer bits and
# 31 - m fractional bits in an int32. Selections are sign-bit arithmetic in int64 (see above).
#
# These chain up to a dozen doubling high multiplies, and each ``Let`` is expanded at every use when
# TVM bounds buffer accesses: chained as ``Let``s, one exp takes gigabytes. So the chained values go
# through ``bind(name, value)``, which returns an expression equal to ``value`` that may be read any
# number of times: :meth:`edgekit.codegen.kernels.scalar_stages.ScalarStages.bind` makes each one a
# scalar stage (a named local in the C), which TVM analyses on its own.

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _int32(value: int):
    return tirx.const(value, "int32")


def is_at_least(x, bound):
    """1 (int32) where the int32 expression ``x`` is >= ``bound``, else 0; ``x - bound`` must not overflow."""
    return _int32(1) - _sign_bit(x - bound, "int32")


def _choose(flag, if_set, if_clear):
    """``if_set`` where the 0/1 int64 ``flag`` is 1, else ``if_clear``; reads ``if_clear`` twice."""
    return (if_clear.astype("int64") + flag * (if_set.astype("int64") - if_clear.astype("int64"))).astype("int32")


def _is_zero(x):
    """1 (int64) where the int32 expression ``x`` is 0, else 0: both ``x - 1`` and ``-x - 1`` are negative."""
    return let("zero_test", x.astype("int64"),
               lambda v: _sign_bit(v - _int64(1), "int64") & _sign_bit(-v - _int64(1), "int64"))


def rounding_divide_by_pot_of(x, exponent):
    """:func:`rounding_divide_by_pot` of any expression (that reads ``x`` three times, so bind it first)."""
    return let("pot_divided", x, lambda value: rounding_divide_by_pot(value, exponent))


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """gemmlowp's SaturatingRoundingMultiplyByPOT with a static exponent: saturates up, rounds down."""
    if exponent <= 0:
        return rounding_divide_by_pot_of(x, _int32(-exponent))
    threshold = _int64((1 << (31 - exponent)) - 1)

    def saturated(v):
        above = _sign_bit(threshold - v, "int64")  # v > threshold
        below = _sign_bit(v + threshold, "int64")  # v < -threshold
        inside = _int64(1) - above - below
        return (inside * (v << _int64(exponent)) + above * _int64(_INT32_MAX) + below * _int64(_INT32_MIN)).astype(
            "int32")

    return let("pot_input", x.astype("int64"), saturated)


def rounding_half_sum(a, b):
    """gemmlowp's RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero (C division)."""

    def halved(total):
        sign = _int64(1) - _int64(2) * _sign_bit(total, "int64")  # total >= 0 ? 1 : -1
        return tirx.truncdiv(total + sign, _int64(2)).astype("int32")

    return let("half_sum", a.astype("int64") + b.astype("int64"), halved)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a, bind):
    """exp(a) for a in [-1/4, 0) in Q0, by a Taylor expansion around -1/8."""
    constant_term = _int32(1895147668)  # exp(-1/8) in Q0
    constant_1_over_3 = _int32(715827883)
    x = bind("exp_x", a + _int32(1 << 28))  # a + 1/8
    x2 = bind("exp_x2", saturating_rounding_doubling_high_mul(x, x))
    x3 = bind("exp_x3", saturating_rounding_doubling_high_mul(x2, x))
    x4_over_4 = bind("exp_x4_over_4", rounding_divide_by_pot_of(saturating_rounding_doubling_high_mul(x2, x2),
                                                                _int32(2)))
    poly = bind("exp_poly", rounding_divide_by_pot_of(
        saturating_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, _int32(1)))
    return constant_term + saturating_rounding_doubling_high_mul(constant_term, x + poly)


# exp(-2**k) in Q0 for the barrel shifter of exp_on_negative_values, k = -2 .. 4
_EXP_OF_MINUS_POWERS_OF_TWO = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int, bind):
    """gemmlowp's exp_on_negative_values: exp(a) in Q0 for an int32 ``a`` <= 0 in Q``integer_bits``."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a = bind("exp_input", a)
    a_mod_quarter_minus_one_quarter = bind("exp_a_mod", (a & _int32(one_quarter - 1)) - _int32(one_quarter))
    result = bind("exp_interval", _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits), bind))
    remainder = bind("exp_remainder", a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_OF_MINUS_POWERS_OF_TWO:
        if integer_bits > exponent:
            bit = ((remainder >> _int32(fractional_bits + exponent)) & _int32(1)).astype("int64")
            result = bind(f"exp_barrel{exponent + 2}",
                          _choose(bit, saturating_rounding_doubling_high_mul(result, _int32(multiplier)), result))
    if integer_bits > 5:  # exp(x < -32) = 0
        below = _sign_bit(a.astype("int64") - _int64(-(1 << (36 - integer_bits))), "int64")
        result = bind("exp_clamped", _choose(below, _int32(0), result))
    return _choose(_is_zero(a), _int32(_INT32_MAX), result)


def one_over_one_plus_x_for_x_in_0_1(a, bind):
    """gemmlowp's 1 / (1 + a) for a in [0, 1) in Q0, by three Newton-Raphson steps in Q2."""
    constant_48_over_17 = _int32(1515870810)
    constant_neg_32_over_17 = _int32(-1010580540)
    one_in_q2 = _int32(1 << 29)
    half_denominator = bind("half_denominator", rounding_half_sum(a, _int32(_INT32_MAX)))
    x = bind("newton0", constant_48_over_17 + saturating_rounding_doubling_high_mul(half_denominator,
                                                                                    constant_neg_32_over_17))
    for step in range(1, 4):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus_half_denominator_times_x = one_in_q2 - half_denominator_times_x
        x = bind(f"newton{step}", x + saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


def count_leading_zeros(x):
    """Leading zero bits of an int32 expression read as uint32 (32 for 0), by binary search.

    TVM's C code generator has no ``clz``; five shift-and-test steps compile to a handful of
    instructions (the conditions are sign bits, as everywhere in this module).
    """

    def search(value, zeros, widths):
        if not widths:
            return (zeros + _sign_bit(value - _int64(1), "int64")).astype("int32")  # value 0: one more
        width, rest = widths[0], widths[1:]

        def step(top_clear):
            return let(f"clz_value{width}", value << (top_clear * _int64(width)), lambda shifted: let(
                f"clz_zeros{width}", zeros + top_clear * _int64(width), lambda counted: search(shifted, counted, rest)))

        return let(f"clz_top{width}", _sign_bit((value >> _int64(32 - width)) - _int64(1), "int64"), step)

    return let("clz_input", x.astype("int64") & _int64(0xFFFFFFFF),
               lambda value: search(value, _int64(0), (16, 8, 4, 2, 1)))


def get_reciprocal(x, integer_bits: int, bind):
    """TFLite's GetReciprocal of an int32 ``x`` > 0 in Q``integer_bits``: (scale, num_bits_over_unit).

    ``scale`` is 1/x in Q0 scaled into [1/2, 1).
    """
    x = bind("reciprocal_input", x)
    headroom_plus_one = bind("headroom_plus_one", count_leading_zeros(x))
    shifted = (x.astype("int64") << headroom_plus_one.astype("int64")) & _int64(0xFFFFFFFF)
    shifted_sum_minus_one = bind("shifted_sum_minus_one", (shifted - _int64(1 << 31)).astype("int32"))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one, bind), _int32(integer_bits) - headroom_plus_one
