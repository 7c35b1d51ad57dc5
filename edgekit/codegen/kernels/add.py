"""Elementwise int8 add kernel (TFLite ADD): both inputs lifted by 2**20, rescaled, summed, rescaled.

``int32_t NAME(const int8_t* a, const int8_t* b, int8_t* output, int32_t a_offset, int32_t a_mult,
int32_t a_shift, int32_t b_offset, int32_t b_mult, int32_t b_shift, int32_t out_offset,
int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max)``. Each element is read before
it is written, so ``output`` may alias ``a`` or ``b`` (in-place add).

C written by edgekit on the requantization routines of ek_mac_dsp.h (TVM's lowering of the int64
arithmetic cost about 130 instructions per element on Cortex-M). When every shift is a right shift
(what ``add_int8_params`` gives for any output scale above 2**-20 of the inputs'), each rescale is
SMMULR and a rounding shift: a lifted input (x + offset) * 2**20 with |x + offset| <= 255 is below
2**28, so doubling it (and the sum of two rescaled ones) stays within int32, where SMMULR(2 v, m)
equals TFLite's SaturatingRoundingDoublingHighMul(v, m) (ek_mac_dsp.h). Other parameters take the
general int64 form. Either way the bytes are TFLite's (``edgekit.ops.add.add_int8``).
"""

from dataclasses import dataclass, fields
from functools import lru_cache

from edgekit.codegen.kernels.kernel_source import KernelSource, kernel_name
from edgekit.codegen.kernels.mac_dsp import HEADER_NAME
from edgekit.ops.add import LEFT_SHIFT, AddInt8Params

SCALARS = tuple(field.name for field in fields(AddInt8Params))  # the C scalars are the op's int8 parameters
VARIANT = "c"


@dataclass(frozen=True)
class AddSpec:
    """Static shape of one elementwise add: the number of elements of each operand."""

    size: int


@lru_cache(maxsize=None)
def add_kernel(spec: AddSpec) -> KernelSource:
    """The C kernel ``ek_add_s8_c_<hash>`` for ``spec``."""
    name = kernel_name("add", spec, VARIANT)
    scalars = ", ".join(f"int32_t {scalar}" for scalar in SCALARS)
    prototype = f"int32_t {name}(const int8_t* a, const int8_t* b, int8_t* output, {scalars})"
    code = f"""#include "{HEADER_NAME}"

/* One element: both inputs lifted and rescaled, summed, rescaled; `fast`: the SMMULR form (see add.py). */
EK_INLINE int8_t add_element(int32_t x, int32_t y, const ek_scale_t scale[3], const ek_pot_t pot[3],
                             const int32_t offset[2], ek_clamp_t clamp, int32_t fast)
{{
    int32_t sum;
    if (fast) {{
        sum = ek_divide_pot(ek_smmulr((x + offset[0]) * (2 << {LEFT_SHIFT}), scale[0].multiplier), pot[0]) +
              ek_divide_pot(ek_smmulr((y + offset[1]) * (2 << {LEFT_SHIFT}), scale[1].multiplier), pot[1]);
        sum = ek_divide_pot(ek_smmulr(sum * 2, scale[2].multiplier), pot[2]) + clamp.output_offset;
        return ek_output_clamp(sum, clamp);
    }}
    sum = ek_rescale((x + offset[0]) * (1 << {LEFT_SHIFT}), scale[0]) +
          ek_rescale((y + offset[1]) * (1 << {LEFT_SHIFT}), scale[1]);
    return ek_output(sum, scale[2], clamp);
}}

/* The {spec.size} elements, in order (so output may alias a or b). */
EK_INLINE void add_all(const int8_t *a, const int8_t *b, int8_t *output, const ek_scale_t scale[3],
                       const ek_pot_t pot[3], const int32_t offset[2], ek_clamp_t clamp, int32_t fast)
{{
    EK_UNROLL4 for (int32_t i = 0; i < {spec.size}; ++i) {{
        output[i] = add_element(a[i], b[i], scale, pot, offset, clamp, fast);
    }}
}}

/* add {spec} */
{prototype}
{{
    const ek_scale_t scale[3] = {{ek_scale(a_mult, a_shift), ek_scale(b_mult, b_shift), ek_scale(out_mult, out_shift)}};
    const ek_pot_t pot[3] = {{ek_pot(-a_shift), ek_pot(-b_shift), ek_pot(-out_shift)}};
    const int32_t offset[2] = {{a_offset, b_offset}};
    const ek_clamp_t clamp = {{out_offset, act_min, act_max}};
    const int32_t fast = a_shift <= 0 && b_shift <= 0 && out_shift <= 0 && a_shift >= -31 && b_shift >= -31 &&
                         out_shift >= -31 && a_mult >= 0 && b_mult >= 0 && out_mult >= 0 &&
                         a_offset >= -128 && a_offset <= 128 && b_offset >= -128 && b_offset <= 128;
    if (fast && act_min == -128 && act_max == 127) {{
        const ek_clamp_t full = {{out_offset, -128, 127}};
        add_all(a, b, output, scale, pot, offset, full, 1);
    }} else if (fast) {{
        add_all(a, b, output, scale, pot, offset, clamp, 1);
    }} else {{
        add_all(a, b, output, scale, pot, offset, clamp, 0);
    }}
    return 0;
}}
"""
    return KernelSource(name, code, prototype, variant=VARIANT)
