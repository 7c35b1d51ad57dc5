"""QUANTIZE and DEQUANTIZE kernels with TFLite Micro's arithmetic (reference_ops AffineQuantize,
Requantize and Dequantize), for models whose interface is float32 while the inside is int8.

- float -> int8: ``int32_t NAME(const float* input, int8_t* output, float scale, int32_t zero_point)``.
  TFLite Micro computes ``round(x / (float)scale) + zero_point`` with a float32 division and
  std::round (half away from zero), then clamps to int8. Here the division is the same float32
  division; the rounding is written out (the int32 cast truncates, then one step away from zero
  when the remainder, which is exact in float, is at least one half), so the kernel needs no libm
  and does not depend on what TVM's round lowers to. The quotient is clamped to +-1024 first: any
  zero point still clamps such values to the int8 range, and the cast stays defined (TFLite
  Micro's cast of a huge value would be undefined behaviour).
- int8 -> int8: ``int32_t NAME(const int8_t* input, int8_t* output, int32_t input_offset,
  int32_t mult, int32_t shift, int32_t output_offset)``: TFLite's Requantize,
  ``MultiplyByQuantizedMultiplier(x - zp_in, mult, shift) + zp_out``, clamped.
- int8 -> float: ``int32_t NAME(const int8_t* input, float* output, float scale, int32_t zero_point)``.
  TFLite Micro computes ``(float)((double)scale * (x - zero_point))``; the exact product of a float
  scale (24-bit mantissa) and an integer below 2**9 fits a double, so rounding it once to float
  equals the float32 product computed here.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.fixed_point import clamp_to_int8, let, multiply_by_quantized_multiplier
from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel

# Past this, any zero point (|zp| <= 128) still clamps to the int8 range; keeps the int cast defined.
_FLOAT_CLAMP = 1024.0


@dataclass(frozen=True)
class QuantizeSpec:
    """Static shape of one QUANTIZE or DEQUANTIZE: the element count and the direction."""

    size: int
    direction: str  # "f32_s8", "s8_s8" or "s8_f32"


def _round_half_away_to_int32(q):
    """std::round of a float expression within +-2**24, as int32: the cast truncates, and the
    remainder (exact in float) decides one step away from zero."""

    def rounded(whole):
        remainder = q - whole.astype("float32")
        half = tirx.const(0.5, "float32")
        up = tirx.Select(remainder >= half, tirx.const(1, "int32"), tirx.const(0, "int32"))
        down = tirx.Select(remainder <= -half, tirx.const(1, "int32"), tirx.const(0, "int32"))
        return whole + up - down

    return let("whole", q.astype("int32"), rounded)


@lru_cache(maxsize=None)
def quantize_kernel(spec: QuantizeSpec) -> KernelSource:
    """The C kernel ``ek_quantize_s8_<hash>`` (float -> int8), ``ek_requantize_s8_<hash>`` or
    ``ek_dequantize_s8_<hash>`` for ``spec``."""
    zero_point = te.var("zero_point", "int32")
    scale = te.var("scale", "float32")
    if spec.direction == "f32_s8":
        x = te.placeholder((spec.size,), "float32", name="input")
        limit = tirx.const(_FLOAT_CLAMP, "float32")

        def element(i):
            clamped = tirx.max(tirx.min(x[i] / scale, limit), -limit)
            return let("scaled", clamped, lambda q: clamp_to_int8(_round_half_away_to_int32(q) + zero_point, -128, 127))

        output = te.compute((spec.size,), element, name=OUTPUT_STAGE)
        args = [x, output, scale, zero_point]
    elif spec.direction == "s8_s8":
        x = te.placeholder((spec.size,), "int8", name="input")
        scalars = [te.var(name, "int32") for name in ("input_offset", "mult", "shift", "output_offset")]
        input_offset, mult, shift, output_offset = scalars

        def element(i):
            scaled = multiply_by_quantized_multiplier(x[i].astype("int32") + input_offset, mult, shift)
            return clamp_to_int8(scaled + output_offset, -128, 127)

        output = te.compute((spec.size,), element, name=OUTPUT_STAGE)
        args = [x, output, *scalars]
    elif spec.direction == "s8_f32":
        x = te.placeholder((spec.size,), "int8", name="input")
        output = te.compute((spec.size,), lambda i: (x[i].astype("int32") - zero_point).astype("float32") * scale,
                            name=OUTPUT_STAGE)
        args = [x, output, scale, zero_point]
    else:
        raise ValueError(f"unknown QUANTIZE direction {spec.direction!r}")
    family = {"f32_s8": "quantize", "s8_s8": "requantize", "s8_f32": "dequantize"}[spec.direction]
    return build_kernel(family, spec, args, lambda sch: None, ("input",))
