"""conv2d int8 kernel: HWC input, OHWI filter, per-channel requantization (TFLite ConvPerChannel).

Loop order: output row, output column, output channel, then the reduction (kernel row, kernel
column, input channel). The innermost loop walks input channels, contiguous in both the input
(HWC) and the filter (OHWI). Padding is tested inline; the requantization runs once per output
element right after its reduction.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import ACC_STAGE, KernelSource
from edgekit.codegen.kernels.mac import MacScalars, build_mac_kernel, offset_input
from edgekit.codegen.kernels.window import PAD_STAGE, tap, window_axes
from edgekit.ops.window import Window


@dataclass(frozen=True)
class Conv2dSpec:
    """Static shape of one conv2d: input (H, W, Cin), Cout, and the window (``Conv2d.window`` of the op)."""

    input_shape: tuple[int, int, int]
    out_channels: int
    window: Window

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (*self.window.output_hw(self.input_shape[:2]), self.out_channels)


@lru_cache(maxsize=None)
def conv2d_kernel(spec: Conv2dSpec) -> KernelSource:
    """The C kernel ``ek_conv2d_s8_<hash>`` for ``spec`` (see :mod:`edgekit.codegen.kernels.mac`)."""
    in_channels = spec.input_shape[2]
    scalars = MacScalars()
    x = te.placeholder(spec.input_shape, "int8", name="input")
    window = spec.window
    filt = te.placeholder((spec.out_channels, *window.kernel, in_channels), "int8", name="filter")
    x_padded = offset_input(x, window.padding, scalars)
    kh, kw = window_axes(window.kernel)
    ic = te.reduce_axis((0, in_channels), name="ic")
    acc = te.compute(
        spec.output_shape,
        lambda oh, ow, oc: te.sum(
            tap(x_padded, window, oh, ow, kh, kw, ic) * filt[oc, kh, kw, ic].astype("int32"),
            axis=[kh, kw, ic],
        ),
        name=ACC_STAGE,
    )

    def schedule_acc(sch, acc_block):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        _, _, out_channel, kernel_row, _, _ = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, kernel_row)
        return out_channel

    return build_mac_kernel("conv2d", spec, x, filt, acc, scalars, schedule_acc)
