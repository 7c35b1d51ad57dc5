"""l2_normalization int8 kernel (TFLite Micro's L2_NORMALIZATION), C written by edgekit on TFLite's
arithmetic as ``edgekit.ops.l2_normalization`` states it: per row the int32 sum of squares of
(x + input_offset), its inverse square root as (multiplier, shift) by gemmlowp's fixed-point Newton
iteration (``edgekit.fixedpoint.inv_sqrt_multiplier``, step for step), then each element rescaled
with ``ek_requantize`` (ek_mac_dsp.h) at 7 more bits of left shift, zero point 0.

``int32_t NAME(const int8_t* input, int8_t* output, int32_t input_offset)``.
"""

from dataclasses import dataclass
from functools import lru_cache

from edgekit.codegen.kernels.kernel_source import KernelSource, kernel_name
from edgekit.codegen.kernels.mac_dsp import HEADER_NAME
from edgekit.ops.l2_normalization import OUTPUT_SCALE_BITS

VARIANT = "c"

_FIXED_POINT = """/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a b / 2^31), truncating division after a
 * sign-dependent nudge; INT32_MIN squared saturates. */
EK_INLINE int32_t ek_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : 1 - (1LL << 30);
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero. */
EK_INLINE int32_t ek_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + ((x & mask) > threshold);
}

/* gemmlowp's SaturatingRoundingMultiplyByPOT for a left shift 0 < exponent < 31. */
EK_INLINE int32_t ek_saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    return x > threshold ? INT32_MAX : x < -threshold ? INT32_MIN : (int32_t)((uint32_t)x << exponent);
}

/* TFLite's GetInvSqrtQuantizedMultiplierExp(x, reverse_shift -1), x >= 0. */
EK_INLINE void ek_inv_sqrt(int32_t x, int32_t *multiplier, int32_t *shift)
{
    if (x <= 1) {
        *multiplier = INT32_MAX;
        *shift = 0;
        return;
    }
    int32_t right = 11;
    if (x >= (1 << 29)) {
        x /= 4;
        ++right;
    }
    const int32_t pairs = (__builtin_clz((uint32_t)x) - 1) / 2 - 1;
    right -= pairs;
    x <<= 2 * pairs;
    const int32_t half_input = ek_rounding_divide_by_pot(x >> 1, 1);
    const int32_t half_three = (1 << 28) + (1 << 27);
    int32_t guess = 1 << 28;
    for (int32_t i = 0; i < 5; ++i) {
        const int32_t cube = ek_saturating_shift_left(ek_srdhm(ek_srdhm(guess, guess), guess), 6);
        const int32_t difference = (int32_t)((uint32_t)ek_srdhm(half_three, guess) -
                                             (uint32_t)ek_srdhm(half_input, cube));
        guess = ek_saturating_shift_left(difference, 3);
    }
    int32_t inverse = ek_srdhm(guess, 1518500250);
    if (right < 0) {
        inverse = (int32_t)((uint32_t)inverse << -right);
        right = 0;
    }
    *multiplier = inverse;
    *shift = -right;
}
"""


@dataclass(frozen=True)
class L2NormalizationSpec:
    """Static shape of one l2_normalization: rows (every axis but the last) and the row length."""

    rows: int
    depth: int


@lru_cache(maxsize=None)
def l2_normalization_kernel(spec: L2NormalizationSpec) -> KernelSource:
    """The C kernel ``ek_l2_normalization_s8_c_<hash>`` for ``spec``."""
    name = kernel_name("l2_normalization", spec, VARIANT)
    prototype = f"int32_t {name}(const int8_t* input, int8_t* output, int32_t input_offset)"
    code = f"""#include "{HEADER_NAME}"

{_FIXED_POINT}
/* l2_normalization {spec} */
{prototype}
{{
    for (int32_t row = 0; row < {spec.rows}; ++row) {{
        const int8_t *x = input + row * {spec.depth};
        int8_t *y = output + row * {spec.depth};
        int32_t squares = 0;
        for (int32_t i = 0; i < {spec.depth}; ++i) {{
            const int32_t centred = x[i] + input_offset;
            squares += centred * centred;
        }}
        int32_t multiplier, shift;
        ek_inv_sqrt(squares, &multiplier, &shift);
        for (int32_t i = 0; i < {spec.depth}; ++i) {{
            y[i] = ek_requantize(x[i] + input_offset, multiplier, shift + {OUTPUT_SCALE_BITS}, 0, -128, 127);
        }}
    }}
    return 0;
}}
"""
    return KernelSource(name, code, prototype, variant=VARIANT)
