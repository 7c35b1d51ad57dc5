"""TFLite's fixed-point requantization, vectorised over NumPy arrays.

Every int8 kernel in edgekit (the reference interpreter, the TVM kernels, the firmware) rescales its
int32 accumulators the way TFLite's reference kernels do, so that imported int8 ``.tflite`` models
give the same bytes. A real multiplier ``m`` is stored as a Q31 integer ``q`` and a power-of-two
``shift`` with ``m ~= q * 2**(shift - 31)``; applying it rounds twice ("double rounding"): once in
the doubling high multiply and once in the rounding right shift. All arithmetic is int64 with
explicit int32 wrap-around where C would wrap.
"""

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(x):
    """C's ``std::round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """Split a positive real multiplier into (Q31 multiplier, shift), as TFLite's QuantizeMultiplier."""
    if real_multiplier == 0.0:
        return 0, 0
    if real_multiplier < 0.0:
        raise ValueError(f"multiplier must be non-negative, got {real_multiplier}")
    fraction, shift = math.frexp(real_multiplier)
    q_fixed = int(round_half_away(fraction * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multipliers(real_multipliers) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: int32 multipliers and int32 shifts."""
    pairs = [quantize_multiplier(float(m)) for m in np.ravel(real_multipliers)]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def wrap_int32(x):
    """Two's-complement wrap of int64 values into int32 range (what C does on overflow in practice)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_div(numerator, denominator: int):
    """C integer division (truncates toward zero); NumPy's ``//`` floors."""
    quotient = np.abs(numerator) // denominator
    return np.where(numerator < 0, -quotient, quotient)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2**31), saturating MIN*MIN."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    product = a * b
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = wrap_int32(_trunc_div(product + nudge, 1 << 31))
    overflow = (a == b) & (a == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier; ``multiplier``/``shift`` broadcast (per channel)."""
    shift = np.asarray(shift, dtype=np.int64)
    left_shift = np.maximum(shift, 0)
    right_shift = np.maximum(-shift, 0)
    shifted = wrap_int32(np.asarray(x, dtype=np.int64) * (np.int64(1) << left_shift))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right_shift)


def requantize(acc, multiplier, shift, output_zero_point: int, act_min: int = -128, act_max: int = 127):
    """int32 accumulators -> int8: rescale, add the output zero point, clamp (fused activation)."""
    scaled = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_zero_point
    return np.clip(scaled, act_min, act_max).astype(np.int8)


# gemmlowp's fixed-point transcendental functions, used by TFLite's integer softmax. A value in
# format Qm has m integer bits and 31 - m fractional bits in an int32 ("FixedPoint<int32_t, m>").

def saturating_rounding_multiply_by_pot(x, exponent: int):
    """gemmlowp's SaturatingRoundingMultiplyByPOT: x * 2**exponent, saturating up, rounding down."""
    x = np.asarray(x, dtype=np.int64)
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _rounding_half_sum(a, b):
    """gemmlowp's RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero."""
    total = np.asarray(a, dtype=np.int64) + b
    return _trunc_div(total + np.where(total >= 0, 1, -1), 2)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0) in Q0, by a Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0
    constant_1_over_3 = 715827883
    x = a + (1 << 28)  # a + 1/8
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + saturating_rounding_doubling_high_mul(constant_term, x + poly)


# exp(-2**k) in Q0 for the barrel shifter of exp_on_negative_values, k = -2 .. 4
_EXP_OF_MINUS_POWERS_OF_TWO = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp's exp_on_negative_values: exp(a) in Q0 for int32 ``a`` <= 0 in Q``integer_bits``."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_OF_MINUS_POWERS_OF_TWO:
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)  # exp(x < -32) = 0
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_of_half_denominator(a):
    """gemmlowp's Newton-Raphson core of 1 / (1 + a) for a in [0, 1) in Q0: the result in Q2."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = constant_48_over_17 + saturating_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17)
    one_in_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus_half_denominator_times_x = one_in_q2 - half_denominator_times_x
        x = x + saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp's 1 / (1 + a) for a in [0, 1) in Q0, by three Newton-Raphson steps in Q2."""
    return saturating_rounding_multiply_by_pot(_newton_reciprocal_of_half_denominator(a), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp's (1 - a) / (1 + a) for a in [0, 1) in Q0 (same Newton-Raphson steps, minus one in Q2)."""
    return saturating_rounding_multiply_by_pot(_newton_reciprocal_of_half_denominator(a) - (1 << 29), 2)


def logistic(a, integer_bits: int):
    """gemmlowp's logistic of int32 ``a`` in Q``integer_bits``, in Q0 (1/2 exactly at 0)."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-np.abs(a), integer_bits))
    result = np.where(positive, result_if_positive, INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, result)


def tanh(a, integer_bits: int):
    """gemmlowp's tanh of int32 ``a`` in Q``integer_bits``, in Q0 (exp runs on 2a: one more integer bit)."""
    a = np.asarray(a, dtype=np.int64)
    negative_tanh_of_minus_abs = one_minus_x_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(-np.abs(a), integer_bits + 1))
    result = np.where(a < 0, -negative_tanh_of_minus_abs, negative_tanh_of_minus_abs)
    return np.where(a == 0, 0, result)


def inv_sqrt_multiplier(x):
    """TFLite's GetInvSqrtQuantizedMultiplierExp(x, reverse_shift=-1) for int32 x >= 0: (multiplier,
    shift) with 1/sqrt(x) ~ multiplier * 2**(shift - 31); five Newton steps in gemmlowp's Q3."""
    x = np.asarray(x, dtype=np.int64)
    small = x <= 1
    shift = np.full(x.shape, 11, np.int64)
    big = x >= (1 << 29)
    x = np.where(big, x // 4, np.maximum(x, 2))
    shift += big
    leading_zeros = 32 - np.frexp(x.astype(np.float64))[1].astype(np.int64)  # of uint32 x
    pairs = (leading_zeros - 1) // 2 - 1
    shift -= pairs
    x = x << (2 * pairs)
    half_input = rounding_divide_by_pot(x >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    guess = np.full(x.shape, 1 << 28, np.int64)
    for _ in range(5):
        cube = saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(
            saturating_rounding_doubling_high_mul(guess, guess), guess), 6)
        difference = wrap_int32(saturating_rounding_doubling_high_mul(half_three, guess)
                                - saturating_rounding_doubling_high_mul(half_input, cube))
        guess = saturating_rounding_multiply_by_pot(difference, 3)
    multiplier = saturating_rounding_doubling_high_mul(guess, 1518500250)
    multiplier = np.where(shift < 0, wrap_int32(multiplier << np.maximum(-shift, 0)), multiplier)
    shift = np.maximum(shift, 0)
    return np.where(small, INT32_MAX, multiplier), np.where(small, 0, -shift)


def get_reciprocal(x, integer_bits: int):
    """TFLite's GetReciprocal: (1/x in Q0 scaled into [1/2, 1), num_bits_over_unit) for x > 0 in Q``integer_bits``."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1].astype(np.int64)  # leading zeros of uint32 x
    num_bits_over_unit = integer_bits - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
