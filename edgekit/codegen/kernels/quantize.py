"""QUANTIZE and DEQUANTIZE kernels with TFLite Micro's arithmetic (reference_ops AffineQuantize,
Requantize and Dequantize), for models whose interface is float32 or uint8 while the inside is
int8. Each 8-bit side is int8 or uint8 (clamped to its own range).

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

from edgekit.codegen.kernels.fixed_point import let, multiply_by_quantized_multiplier
from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel

# Past this, any zero point (|zp| <= 255) still clamps to the 8-bit range; keeps the int cast defined.
_FLOAT_CLAMP = 1024.0
INTEGER_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class QuantizeSpec:
    """Static shape of one QUANTIZE or DEQUANTIZE: the element count, the input and output dtypes
    (float32 -> int8/uint8: quantize; int8/uint8 -> int8/uint8: requantize; int8/uint8 -> float32:
    dequantize)."""

    size: int
    input_dtype: str
    output_dtype: str

    @property
    def family(self) -> str:
        if self.input_dtype == "float32":
            return "quantize"
        return "dequantize" if self.output_dtype == "float32" else "requantize"


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


def _clamp_to(value, dtype: str):
    """An int32 expression clamped to ``dtype``'s range and narrowed to it."""
    low, high = INTEGER_RANGES[dtype]
    return tirx.min(tirx.max(value, low), high).astype(dtype)


@lru_cache(maxsize=None)
def quantize_kernel(spec: QuantizeSpec) -> KernelSource:
    """The C kernel ``ek_quantize_s8_<hash>`` (float -> 8-bit), ``ek_requantize_s8_<hash>`` or
    ``ek_dequantize_s8_<hash>`` for ``spec``."""
    if spec.family != "quantize" and spec.input_dtype not in INTEGER_RANGES or (
            spec.family != "dequantize" and spec.output_dtype not in INTEGER_RANGES):
        raise ValueError(f"no QUANTIZE kernel from {spec.input_dtype} to {spec.output_dtype}")
    zero_point = te.var("zero_point", "int32")
    scale = te.var("scale", "float32")
    x = te.placeholder((spec.size,), spec.input_dtype, name="input")
    if spec.family == "quantize":
        limit = tirx.const(_FLOAT_CLAMP, "float32")

        def element(i):
            clamped = tirx.max(tirx.min(x[i] / scale, limit), -limit)
            return let("scaled", clamped,
                       lambda q: _clamp_to(_round_half_away_to_int32(q) + zero_point, spec.output_dtype))

        args = [x, te.compute((spec.size,), element, name=OUTPUT_STAGE), scale, zero_point]
    elif spec.family == "requantize":
        scalars = [te.var(name, "int32") for name in ("input_offset", "mult", "shift", "output_offset")]
        input_offset, mult, shift, output_offset = scalars

        def element(i):
            scaled = multiply_by_quantized_multiplier(x[i].astype("int32") + input_offset, mult, shift)
            return _clamp_to(scaled + output_offset, spec.output_dtype)

        args = [x, te.compute((spec.size,), element, name=OUTPUT_STAGE), *scalars]
    else:
        output = te.compute((spec.size,), lambda i: (x[i].astype("int32") - zero_point).astype("float32") * scale,
                            name=OUTPUT_STAGE)
        args = [x, output, scale, zero_point]
    return build_kernel(spec.family, spec, args, lambda sch: None, ("input",))
