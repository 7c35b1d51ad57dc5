"""depthwise_conv2d int8 kernel: filter [1, KH, KW, C*M], output channel oc reads input channel oc // M.

Loop order: output row, output column, output channel, kernel row, kernel column; the
requantization runs once per output element right after its window sum. There is no channel
reduction, so the innermost loop is the kernel column (stride C in memory); keeping a row of
accumulators per channel instead would need an int32 buffer of C elements.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import KernelSource
from edgekit.codegen.kernels.mac import ACC_STAGE, MacScalars, build_mac_kernel
from edgekit.codegen.kernels.window import PAD_STAGE, padded, window_axes
from edgekit.ops.window import output_hw


@dataclass(frozen=True)
class DepthwiseConv2dSpec:
    """Static shape of one depthwise conv2d: input (H, W, C), depth multiplier M, window geometry."""

    input_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    depth_multiplier: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right

    @property
    def output_shape(self) -> tuple[int, int, int]:
        out_h, out_w = output_hw(self.input_shape[:2], self.kernel, self.stride, self.dilation, self.padding)
        return out_h, out_w, self.input_shape[2] * self.depth_multiplier


@lru_cache(maxsize=None)
def depthwise_conv2d_kernel(spec: DepthwiseConv2dSpec) -> KernelSource:
    """The C kernel ``ek_depthwise_conv2d_s8_<hash>`` for ``spec`` (see :mod:`edgekit.codegen.kernels.mac`)."""
    in_h, in_w, in_c = spec.input_shape
    kernel_h, kernel_w = spec.kernel
    stride_h, stride_w = spec.stride
    dilation_h, dilation_w = spec.dilation
    out_h, out_w, out_c = spec.output_shape
    scalars = MacScalars()
    x = te.placeholder((in_h, in_w, in_c), "int8", name="input")
    filt = te.placeholder((1, kernel_h, kernel_w, out_c), "int8", name="filter")
    x_padded = padded(x, spec.padding, 0, lambda element: element.astype("int32") + scalars.input_offset)
    kh, kw = window_axes(spec.kernel)
    acc = te.compute(
        (out_h, out_w, out_c),
        lambda oh, ow, oc: te.sum(
            x_padded[oh * stride_h + kh * dilation_h, ow * stride_w + kw * dilation_w, oc // spec.depth_multiplier]
            * filt[0, kh, kw, oc].astype("int32"),
            axis=[kh, kw],
        ),
        name=ACC_STAGE,
    )

    def schedule_acc(sch, acc_block):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        _, _, out_channel, kernel_row, _ = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, kernel_row)
        return out_channel

    return build_mac_kernel("depthwise_conv2d", spec, x, filt, acc, scalars, schedule_acc)
