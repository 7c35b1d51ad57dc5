"""avg_pool2d and max_pool2d int8 kernels (TFLite reference semantics; padding never counts).

``int32_t NAME(const int8_t* input, int8_t* output, int32_t act_min, int32_t act_max)``.

Max pooling clamps each element before taking the maximum (clamping is monotone, so this equals
clamping the maximum) and reduces straight into the int8 output: loop order output row, output
column, kernel row, kernel column, channel, with the channel loop innermost and contiguous.
Average pooling needs an int32 sum per output, so it keeps the channel loop outside the window
loops and divides right after each window sum, rounding half away from zero with C division.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.fixed_point import clamp_to_int8, let
from edgekit.codegen.kernels.kernel_source import ACC_STAGE, OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.codegen.kernels.window import PAD_STAGE, padded, tap, window_axes
from edgekit.ops.window import Window

CONST_PARAMS = ("input",)


@dataclass(frozen=True)
class Pool2dSpec:
    """Static shape of one pooling layer: input (H, W, C) and the window (``window`` of the op, dilation 1)."""

    input_shape: tuple[int, int, int]
    window: Window

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (*self.window.output_hw(self.input_shape[:2]), self.input_shape[2])


def _window_reduce(spec: Pool2dSpec, x_padded: te.Tensor, reducer, dtype: str, name: str) -> te.Tensor:
    kh, kw = window_axes(spec.window.kernel)
    return te.compute(
        spec.output_shape,
        lambda oh, ow, c: reducer(tap(x_padded, spec.window, oh, ow, kh, kw, c).astype(dtype), axis=[kh, kw]),
        name=name,
    )


def _in_bounds_count(spec: Pool2dSpec, oh, ow):
    """Number of window elements inside the image for output (oh, ow)."""
    in_h, in_w, _ = spec.input_shape
    window = spec.window
    top, left, _, _ = window.padding
    row0 = oh * window.stride[0] - top
    col0 = ow * window.stride[1] - left
    rows = tirx.min(row0 + window.kernel[0], in_h) - tirx.max(row0, 0)
    cols = tirx.min(col0 + window.kernel[1], in_w) - tirx.max(col0, 0)
    return rows * cols


@lru_cache(maxsize=None)
def avg_pool2d_kernel(spec: Pool2dSpec) -> KernelSource:
    """The C kernel ``ek_avg_pool2d_s8_<hash>`` for ``spec``."""
    act_min, act_max = te.var("act_min", "int32"), te.var("act_max", "int32")
    x = te.placeholder(spec.input_shape, "int8", name="input")
    acc = _window_reduce(spec, padded(x, spec.window.padding, 0), te.sum, "int32", ACC_STAGE)

    def average(oh, ow, c):
        total = acc[oh, ow, c]

        def rounded(count):
            half = tirx.truncdiv(count, 2)
            return tirx.Select(total > 0, tirx.truncdiv(total + half, count), tirx.truncdiv(total - half, count))

        return clamp_to_int8(let("count", _in_bounds_count(spec, oh, ow), rounded), act_min, act_max)

    output = te.compute(spec.output_shape, average, name=OUTPUT_STAGE)

    def schedule(sch):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        acc_block = sch.get_sblock(ACC_STAGE)
        _, _, channel, kernel_row, _ = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, kernel_row)
        sch.reverse_compute_at(sch.get_sblock(OUTPUT_STAGE), channel)

    return build_kernel("avg_pool2d", spec, [x, output, act_min, act_max], schedule, CONST_PARAMS)


@lru_cache(maxsize=None)
def max_pool2d_kernel(spec: Pool2dSpec) -> KernelSource:
    """The C kernel ``ek_max_pool2d_s8_<hash>`` for ``spec``."""
    act_min, act_max = te.var("act_min", "int32"), te.var("act_max", "int32")
    x = te.placeholder(spec.input_shape, "int8", name="input")
    clamped = padded(x, spec.window.padding, tirx.const(-128, "int8"),
                     lambda element: clamp_to_int8(element.astype("int32"), act_min, act_max))
    output = _window_reduce(spec, clamped, te.max, "int8", OUTPUT_STAGE)

    def schedule(sch):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        block = sch.get_sblock(OUTPUT_STAGE)
        out_row, out_col, channel, kernel_row, kernel_col = sch.get_loops(block)
        sch.reorder(kernel_row, kernel_col, channel)
        sch.decompose_reduction(block, kernel_row)

    return build_kernel("max_pool2d", spec, [x, output, act_min, act_max], schedule, CONST_PARAMS)
