"""depthwise_conv2d int8 kernel: filter [1, KH, KW, C*M], output channel oc reads input channel oc // M.

The kernel loops output row, output column, output channel, kernel row, kernel column; the
requantization runs once per output element right after its window sum. There is no channel
reduction, so the innermost loop is the kernel column (stride C in memory); keeping a row of
accumulators per channel instead would need an int32 buffer of C elements.

In-place depthwise (the memory plan let the output overwrite its input, see the ``buffer_share`` of
``ops/depthwise_conv2d.py``) runs the same kernel channel by channel (:func:`channel_by_channel`).
"""

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from tvm import te

from edgekit.codegen.kernels.kernel_source import ACC_STAGE, KernelSource
from edgekit.codegen.kernels.mac import MacScalars, build_mac_kernel, offset_input
from edgekit.codegen.kernels.window import PAD_STAGE, tap, window_axes
from edgekit.ops.window import Window


@dataclass(frozen=True)
class DepthwiseConv2dSpec:
    """Static shape of one depthwise conv2d: input (H, W, C), depth multiplier M, and the window
    (``DepthwiseConv2d.window`` of the op)."""

    input_shape: tuple[int, int, int]
    depth_multiplier: int
    window: Window

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (*self.window.output_hw(self.input_shape[:2]), self.input_shape[2] * self.depth_multiplier)


@lru_cache(maxsize=None)
def depthwise_conv2d_kernel(spec: DepthwiseConv2dSpec) -> KernelSource:
    """The C kernel ``ek_depthwise_conv2d_s8_<hash>`` for ``spec`` (see :mod:`edgekit.codegen.kernels.mac`)."""
    scalars = MacScalars()
    window = spec.window
    x = te.placeholder(spec.input_shape, "int8", name="input")
    filt = te.placeholder((1, *window.kernel, spec.output_shape[2]), "int8", name="filter")
    x_padded = offset_input(x, window.padding, scalars)
    kh, kw = window_axes(window.kernel)
    acc = te.compute(
        spec.output_shape,
        lambda oh, ow, oc: te.sum(
            tap(x_padded, window, oh, ow, kh, kw, oc // spec.depth_multiplier) * filt[0, kh, kw, oc].astype("int32"),
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


def channel_by_channel(call, node, weight: np.ndarray, prefix: str, pointer, spec: DepthwiseConv2dSpec):
    """Turn ``call`` (of the kernel for one channel, ``spec``) into in-place depthwise over all channels.

    Channel by channel: copy input channel c into a scratch plane, run the one-channel kernel on it
    into a second plane, and copy that into output channel c, which only overwrites elements of
    input channel c (see ``ops/depthwise_conv2d.py``). The kernel is the plain depthwise kernel, so it
    stays bit-exact; the filter is stored planar (channel-major), and the two planes are the call's
    ``scratch_bytes``.
    """
    kernel = tuple(weight.shape[1:3])
    channels = weight.shape[3]
    height, width, _ = spec.input_shape
    out_h, out_w, _ = spec.output_shape
    planar = replace(call.constants[0], name=f"{prefix}_wc",
                     values=np.ascontiguousarray(np.moveaxis(weight.reshape(kernel + (channels,)), -1, 0)))
    args = dict(zip(call.kernel.params, call.args))
    args.update({"input": "plane_in", "output": "plane_out", "filter": f"{planar.name} + c * {kernel[0] * kernel[1]}"})
    for name in ("bias", "multiplier", "shift"):
        args[name] = f"{args[name]} + c"
    in_pixels, out_pixels = height * width, out_h * out_w
    body = f"""for (int32_t c = 0; c < {channels}; ++c) {{ /* {node.name}: in-place depthwise, channel by channel */
        int8_t *plane_in = ek_scratch, *plane_out = ek_scratch + {in_pixels};
        const int8_t *in = {pointer(node.inputs[0])} + c;
        int8_t *out = {pointer(node.output)} + c;
        for (int32_t i = 0; i < {in_pixels}; ++i) plane_in[i] = in[i * {channels}];
        EK_CHECK({call.kernel.name}({', '.join(args.values())}));
        for (int32_t i = 0; i < {out_pixels}; ++i) out[i * {channels}] = plane_out[i];
    }}"""
    from edgekit.ops import get_op

    scratch = get_op(node.op, node).inplace_scratch_bytes((1, height, width, channels), (1, out_h, out_w, channels))
    return replace(call, constants=[planar] + call.constants[1:], body=body, scratch_bytes=scratch)
