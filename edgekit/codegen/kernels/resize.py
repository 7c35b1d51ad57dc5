"""resize_nearest and resize_bilinear int8 kernels on an HWC tensor (batch 1).

Where each output row and column reads from is static; the op definitions work it out exactly as
TFLite does (float32 for nearest, 10-bit fixed point for bilinear: ``edgekit.ops.resize``) and pass
it as int32 tables in flash, so the kernels only gather and, for bilinear, interpolate.

``int32_t NAME(const int8_t* input, const int32_t* rows, const int32_t* cols, int8_t* output)``:
nearest, ``output[y, x, c] = input[rows[y], cols[x], c]``.

``int32_t NAME(const int8_t* input, const int32_t* row_lo, const int32_t* row_hi, const int32_t* row_frac,
const int32_t* col_lo, const int32_t* col_hi, const int32_t* col_frac, int8_t* output)``: bilinear, the
four neighbours weighted by (1024 - frac, frac) per axis, summed in int64 and divided by 2**20
rounding half away from zero (ResizeBilinearInteger).
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.fixed_point import let
from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class ResizeSpec:
    """Static shapes of one resize: input (H, W, C) and output (H, W)."""

    input_shape: tuple[int, int, int]
    output_size: tuple[int, int]

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (*self.output_size, self.input_shape[2])


@lru_cache(maxsize=None)
def resize_nearest_kernel(spec: ResizeSpec) -> KernelSource:
    """The C kernel ``ek_resize_nearest_s8_<hash>`` for ``spec``."""
    x = te.placeholder(spec.input_shape, "int8", name="input")
    rows = te.placeholder((spec.output_size[0],), "int32", name="rows")
    cols = te.placeholder((spec.output_size[1],), "int32", name="cols")
    output = te.compute(spec.output_shape, lambda y, w, c: x[rows[y], cols[w], c], name=OUTPUT_STAGE)
    return build_kernel("resize_nearest", spec, [x, rows, cols, output], lambda sch: None, ("input", "rows", "cols"))


def _rounded_shift_20(total):
    """(total +- 2**19) / 2**20 truncating: round half away from zero (TFLite's double-rounding path)."""
    at_most_zero = ((total - tirx.const(1, "int64")) >> tirx.const(63, "int64")) & tirx.const(1, "int64")
    rounding = tirx.const(1 << 19, "int64") - at_most_zero * tirx.const(1 << 20, "int64")
    return tirx.truncdiv(total + rounding, tirx.const(1 << 20, "int64"))


@lru_cache(maxsize=None)
def resize_bilinear_kernel(spec: ResizeSpec) -> KernelSource:
    """The C kernel ``ek_resize_bilinear_s8_<hash>`` for ``spec``."""
    x = te.placeholder(spec.input_shape, "int8", name="input")
    out_h, out_w = spec.output_size
    tables = {name: te.placeholder((out_h if name.startswith("row") else out_w,), "int32", name=name)
              for name in ("row_lo", "row_hi", "row_frac", "col_lo", "col_hi", "col_frac")}

    def element(y, w, c):
        fy, fx = tables["row_frac"][y].astype("int64"), tables["col_frac"][w].astype("int64")
        one = tirx.const(1024, "int64")

        def pixel(row, col):
            return x[tables[row][y], tables[col][w], c].astype("int64")

        total = (pixel("row_lo", "col_lo") * (one - fy) * (one - fx) + pixel("row_hi", "col_lo") * fy * (one - fx)
                 + pixel("row_lo", "col_hi") * (one - fy) * fx + pixel("row_hi", "col_hi") * fy * fx)
        return let("total", total, _rounded_shift_20).astype("int8")

    output = te.compute(spec.output_shape, element, name=OUTPUT_STAGE)
    args = [x, *tables.values(), output]
    return build_kernel("resize_bilinear", spec, args, lambda sch: None, ("input", *tables))
