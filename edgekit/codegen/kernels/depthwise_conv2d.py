"""depthwise_conv2d int8 kernels: filter [1, KH, KW, C*M], output channel oc reads input channel oc // M.

The plain kernel loops output row, output column, output channel, kernel row, kernel column; the
requantization runs once per output element right after its window sum. There is no channel
reduction, so the innermost loop is the kernel column (stride C in memory); keeping a row of
accumulators per channel instead would need an int32 buffer of C elements.

The in-place kernel (TinyEngine's) loops channels outermost instead; see
:func:`depthwise_conv2d_inplace_kernel`.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import ACC_STAGE, KernelSource
from edgekit.codegen.kernels.mac import MacScalars, build_mac_kernel, offset_input
from edgekit.codegen.kernels.window import PAD_STAGE, tap, window_axes
from edgekit.ops.window import output_hw

SCRATCH_STAGE = "scratch"


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


def _window_sums(spec: DepthwiseConv2dSpec, source: te.Tensor, filt: te.Tensor, scalars: MacScalars) -> te.Tensor:
    """The int32 accumulator stage: each output channel's window over ``source`` (HWC) times its filter."""
    x_padded = offset_input(source, spec.padding, scalars)
    kh, kw = window_axes(spec.kernel)
    return te.compute(
        spec.output_shape,
        lambda oh, ow, oc: te.sum(
            tap(x_padded, spec.stride, spec.dilation, oh, ow, kh, kw, oc // spec.depth_multiplier)
            * filt[0, kh, kw, oc].astype("int32"),
            axis=[kh, kw],
        ),
        name=ACC_STAGE,
    )


def _input_and_filter(spec: DepthwiseConv2dSpec) -> tuple[te.Tensor, te.Tensor]:
    x = te.placeholder(spec.input_shape, "int8", name="input")
    return x, te.placeholder((1, *spec.kernel, spec.output_shape[2]), "int8", name="filter")


@lru_cache(maxsize=None)
def depthwise_conv2d_kernel(spec: DepthwiseConv2dSpec) -> KernelSource:
    """The C kernel ``ek_depthwise_conv2d_s8_<hash>`` for ``spec`` (see :mod:`edgekit.codegen.kernels.mac`)."""
    scalars = MacScalars()
    x, filt = _input_and_filter(spec)
    acc = _window_sums(spec, x, filt, scalars)

    def schedule_acc(sch, acc_block):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        _, _, out_channel, kernel_row, _ = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, kernel_row)
        return out_channel

    return build_mac_kernel("depthwise_conv2d", spec, x, filt, acc, scalars, schedule_acc)


@lru_cache(maxsize=None)
def depthwise_conv2d_inplace_kernel(spec: DepthwiseConv2dSpec) -> KernelSource:
    """The C kernel ``ek_depthwise_conv2d_inplace_s8_<hash>``: ``output`` may be the same buffer as ``input``.

    TinyEngine's in-place depthwise: channel by channel, the kernel first copies the input channel
    into ``scratch`` (one H x W plane, :func:`depthwise_conv2d_inplace_get_buffer_size` bytes), then
    computes that output channel from the copy. An output channel only overwrites bytes of its own
    input channel, already copied, so any stride and padding work; depth multiplier must be 1.
    Signature: the MAC signature with ``int8_t* scratch`` after ``output``, and ``input`` not const.
    Loop order: channel, output row, output column, kernel row, kernel column (contiguous in scratch).
    """
    if spec.depth_multiplier != 1:
        raise ValueError(f"in-place depthwise needs depth multiplier 1, got {spec.depth_multiplier}")
    scalars = MacScalars()
    x, filt = _input_and_filter(spec)
    plane = te.compute(spec.input_shape, lambda h, w, c: x[h, w, c], name=SCRATCH_STAGE)
    acc = _window_sums(spec, plane, filt, scalars)

    def schedule_acc(sch, acc_block):
        sch.compute_inline(sch.get_sblock(PAD_STAGE))
        out_row, out_col, channel, kernel_row, _ = sch.get_loops(acc_block)
        sch.reorder(channel, out_row, out_col)
        sch.compute_at(sch.get_sblock(SCRATCH_STAGE), channel)  # the copy shrinks to one channel's plane
        sch.decompose_reduction(acc_block, kernel_row)
        return out_col

    const_params = ("filter", "bias", "multiplier", "shift")
    return build_mac_kernel("depthwise_conv2d_inplace", spec, x, filt, acc, scalars, schedule_acc, const_params,
                            (SCRATCH_STAGE,))


def depthwise_conv2d_inplace_get_buffer_size(spec: DepthwiseConv2dSpec) -> int:
    """Bytes of the ``scratch`` buffer :func:`depthwise_conv2d_inplace_kernel` needs (one input plane)."""
    return depthwise_conv2d_inplace_kernel(spec).scratch_bytes
