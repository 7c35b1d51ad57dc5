"""depthwise_conv2d: filter [1, KH, KW, C*M]; output channel c*M+m reads input channel c.

In place (``buffer_share``, on with ``plan_memory(inplace_depthwise=True)``): with one output channel
per input channel (M = 1), a kernel that works channel by channel (copy input channel c into a
scratch plane, then write output channel c) overwrites only elements of input channel c, because
output element (y, x, c) sits at (y * W_out + x) * C + c, an element of input channel c. The output
may therefore start at the input's offset for any stride and padding, as long as it is no larger
than the input. Off by default for the planner because the plain kernel reads neighbouring pixels
of all channels after it has written some outputs; ``lower`` then runs the channel-by-channel form.

The DSP kernel of a patched schedule (its scratch-lean form, where in-place writes happen) keeps
only a window of input rows of channel c (``codegen/kernels/mac_dsp.py``): it
writes output row r after copying the input rows up to the last one r's windows read, and copies
later rows from the input when a later output row needs them. Output row r of channel c ends at
pixel (r + 1) * W_out, so it must stay below the first input row a later output row copies,
max(r * stride - top + (KH - 1) * dilation + 1, (r + 1) * stride - top), unless that row is past
the input (``channelwise_overwrite_ok``, which the planner and the plan checker ask). It holds for
padding smaller than the kernel and an output no wider than the input, so in every MobileNet-like
block; a top padding as tall as the kernel (a folded PAD before a 1x1 depthwise) breaks it: the
first output rows, all padding, would overwrite input rows before they are read.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import BufferShare
from edgekit.ops.conv_params import (SpatialMacOp, bias_or_zeros, bias_rule, finish_float,
                                     finish_int8, mac_int8_params)
from edgekit.ops.window import output_hw, pad_hw, windows


@dataclass
class DepthwiseConv2dAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    depth_multiplier: int = 1
    activation: str | None = None


def _depthwise_accumulate(x_offset, filt, depth_multiplier, stride, dilation, padding):
    _, kh, kw, out_c = filt.shape
    out_hw = output_hw(x_offset.shape[1:3], (kh, kw), stride, dilation, padding)
    cols = windows(pad_hw(x_offset, padding), (kh, kw), stride, dilation, out_hw)  # [OH,OW,KH,KW,C]
    if depth_multiplier > 1:
        cols = np.repeat(cols, depth_multiplier, axis=-1)
    acc = np.einsum("hwijc,ijc->hwc", cols, filt[0].astype(np.float64), optimize=True)
    return acc[np.newaxis]


def depthwise_conv2d_int8(x, filt, bias, mult, shift, *, depth_multiplier, stride, dilation, padding,
                          input_offset, output_offset, act_min, act_max):
    """TFLite reference_integer_ops::DepthwiseConvPerChannel on [1,H,W,C] int8 input."""
    acc = _depthwise_accumulate(x.astype(np.float64) + input_offset, filt, depth_multiplier, stride, dilation,
                                padding)
    return finish_int8(acc, bias, mult, shift, output_offset, act_min, act_max)


def constraint_filter_matches_input(attrs, in_shapes) -> tuple[bool, str]:
    """The input is NHWC and the filter (1, kernel height, kernel width, input channels x depth multiplier)."""
    x, w = in_shapes[0], in_shapes[1]
    ok = (len(in_shapes) in (2, 3) and len(x) == 4 and len(w) == 4 and w[0] == 1
          and w[3] == x[3] * attrs.depth_multiplier)
    return ok, f"input {list(x)}, filter {list(w)}, depth multiplier {attrs.depth_multiplier}"


class DepthwiseConv2d(SpatialMacOp):
    name = "depthwise_conv2d"
    attrs_type = DepthwiseConv2dAttrs
    weight_channel_axis = 3  # 1HWC
    constraints = (constraint_filter_matches_input, bias_rule(3))
    kernel_variants = True
    buffer_share = BufferShare("in-place depthwise", True,
                               lambda node: (0,) if node.attrs.depth_multiplier == 1 else (), "inplace_depthwise")

    def infer_shapes(self, attrs, in_shapes):
        x, w = in_shapes[0], in_shapes[1]
        oh, ow = output_hw(x[1:3], w[1:3], attrs.stride, attrs.dilation, attrs.padding)
        return [(1, oh, ow, w[3])]

    def run_float(self, attrs, inputs):
        a = attrs
        acc = _depthwise_accumulate(inputs[0].astype(np.float64), inputs[1], a.depth_multiplier, a.stride,
                                    a.dilation, a.padding)
        return [finish_float(acc, inputs, a.activation)]

    def run_int8(self, node, graph, inputs):
        w = inputs[1]
        p = mac_int8_params(node, graph, w.shape[3])
        bias = bias_or_zeros(graph, node, w.shape[3], np.int32)
        a = node.attrs
        return [depthwise_conv2d_int8(inputs[0], w, bias, p.multiplier, p.shift,
                                      depth_multiplier=a.depth_multiplier, stride=a.stride, dilation=a.dilation,
                                      padding=a.padding, input_offset=p.input_offset,
                                      output_offset=p.output_offset, act_min=p.act_min, act_max=p.act_max)]

    def macs(self, attrs, in_shapes, out_shapes):
        _, kh, kw, out_c = in_shapes[1]
        return int(np.prod(out_shapes[0][1:3])) * out_c * kh * kw

    def expected_output_error(self, weight_error, input_mean):
        multiplier = weight_error.shape[3] // input_mean.size
        return weight_error[0].sum(axis=(0, 1)) * np.repeat(input_mean, multiplier)

    def channelwise_overwrite_ok(self, node, graph, in_shape, out_shape):
        """No larger than the input, and no output row reaches an input row that a later output row
        still copies (module doc)."""
        window = self.window(node, graph)
        (_, height, width, _), (_, out_h, out_w, _) = in_shape, out_shape
        rows, stride, top = (window.kernel[0] - 1) * window.dilation[0] + 1, window.stride[0], window.padding[0]
        later = [min(height, max(r * stride - top + rows, (r + 1) * stride - top)) for r in range(out_h - 1)]
        return super().channelwise_overwrite_ok(node, graph, in_shape, out_shape) and all(
            (r + 1) * out_w <= first * width for r, first in enumerate(later))

    def inplace_scratch_bytes(self, in_shape, out_shape):
        """One input and one output channel plane (see the module doc)."""
        return in_shape[1] * in_shape[2] + out_shape[1] * out_shape[2]

    def lower(self, node, graph, prefix, pointer, in_place=False, *, kernels):
        """The plain kernel. In place: the DSP kernel as it is (a whole plane, or in a patched schedule
        a row window, see the module doc), or the portable one-channel kernel run channel by channel
        through two planes."""
        from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec, channel_by_channel
        from edgekit.codegen.kernels.variants import PORTABLE
        from edgekit.codegen.layer_calls import mac_call

        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        multiplier = node.attrs.depth_multiplier
        spec = DepthwiseConv2dSpec(tuple(x.shape[1:]), multiplier, self.window(node, graph))
        call = mac_call(node, graph, "depthwise_conv2d", spec, kernels, prefix, pointer, w.shape[3])
        if not in_place or call.kernel.variant != PORTABLE:
            return call
        if multiplier != 1:
            raise UnsupportedOpError(f"node {node.name}: in-place depthwise needs depth multiplier 1, got {multiplier}")
        spec = DepthwiseConv2dSpec((x.shape[1], x.shape[2], 1), 1, self.window(node, graph))
        call = mac_call(node, graph, "depthwise_conv2d", spec, kernels.portable(), prefix, pointer, w.shape[3])
        return channel_by_channel(call, node, w.data, prefix, pointer, spec)


OP = DepthwiseConv2d()
