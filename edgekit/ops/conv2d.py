"""conv2d: NHWC input, OHWI filter, optional bias, fused activation.

The int8 reference accumulates (x + input_offset) * w exactly in float64 (every partial sum of
int8 products stays far below 2**53), then requantizes per output channel as TFLite does.

In place (``buffer_share``, on with ``plan_memory(inplace_rows=True)``): a row-wise convolution
(1x1, stride 1, no padding) computes output pixel p from input pixel p alone. Run a few pixels per
kernel call in increasing order (``lower`` with ``in_place``; ``stream_pixels``: two layer by layer,
one row of a patch), call k reads its input pixels and writes the same output pixels, so the output
may overwrite input pixels that no later call reads: shrinking pixels, it starts one call's output
(two pixels) below the input; widening them, the input sits in the output's tail. The planner finds
the shift from those calls and the plan checker proves it (``memory/streaming.py``).
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import BufferShare
from edgekit.ops.conv_params import (SpatialMacOp, bias_or_zeros, bias_rule, finish_float,
                                     finish_int8, mac_int8_params)
from edgekit.ops.window import output_hw, pad_hw, windows


@dataclass
class Conv2dAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: str | None = None


def _conv_accumulate(x_offset: np.ndarray, filt: np.ndarray, stride, dilation, padding) -> np.ndarray:
    """sum over taps of x * w as float64, x already offset; padding contributes 0."""
    out_c, kh, kw, in_c = filt.shape
    out_hw = output_hw(x_offset.shape[1:3], (kh, kw), stride, dilation, padding)
    cols = windows(pad_hw(x_offset, padding), (kh, kw), stride, dilation, out_hw)
    cols = cols.reshape(out_hw[0] * out_hw[1], kh * kw * in_c)
    acc = cols @ filt.reshape(out_c, -1).astype(np.float64).T
    return acc.reshape(1, out_hw[0], out_hw[1], out_c)


def conv2d_int8(x, filt, bias, mult, shift, *, stride, dilation, padding, input_offset, output_offset,
                act_min, act_max):
    """TFLite reference_integer_ops::ConvPerChannel on [1,H,W,C] int8 input."""
    acc = _conv_accumulate(x.astype(np.float64) + input_offset, filt, stride, dilation, padding)
    return finish_int8(acc, bias, mult, shift, output_offset, act_min, act_max)


def constraint_filter_matches_input(attrs, in_shapes) -> tuple[bool, str]:
    """The input is NHWC and the filter (out channels, kernel height, kernel width, input channels)."""
    x, w = in_shapes[0], in_shapes[1]
    ok = len(in_shapes) in (2, 3) and len(x) == 4 and len(w) == 4 and w[3] == x[3]
    return ok, f"input {list(x)}, filter {list(w)}"


class Conv2d(SpatialMacOp):
    name = "conv2d"
    attrs_type = Conv2dAttrs
    weight_channel_axis = 0  # OHWI
    constraints = (constraint_filter_matches_input, bias_rule(0))
    buffer_share = BufferShare("in-place 1x1 conv, streamed", True, lambda node: (0,), "inplace_rows", streams=True)
    kernel_variants = True

    def infer_shapes(self, attrs, in_shapes):
        x, w = in_shapes[0], in_shapes[1]
        oh, ow = output_hw(x[1:3], w[1:3], attrs.stride, attrs.dilation, attrs.padding)
        return [(1, oh, ow, w[0])]

    def run_float(self, attrs, inputs):
        x, w = inputs[0], inputs[1]
        acc = _conv_accumulate(x.astype(np.float64), w, attrs.stride, attrs.dilation, attrs.padding)
        return [finish_float(acc, inputs, attrs.activation)]

    def run_int8(self, node, graph, inputs):
        w = inputs[1]
        p = mac_int8_params(node, graph, w.shape[0])
        bias = bias_or_zeros(graph, node, w.shape[0], np.int32)
        a = node.attrs
        return [conv2d_int8(inputs[0], w, bias, p.multiplier, p.shift, stride=a.stride, dilation=a.dilation,
                            padding=a.padding, input_offset=p.input_offset, output_offset=p.output_offset,
                            act_min=p.act_min, act_max=p.act_max)]

    def macs(self, attrs, in_shapes, out_shapes):
        out_c, kh, kw, in_c = in_shapes[1]
        return int(np.prod(out_shapes[0][1:3])) * out_c * kh * kw * in_c

    def expected_output_error(self, weight_error, input_mean):
        return np.einsum("ohwi,i->o", weight_error, input_mean)

    def row_wise(self, node, graph):
        """A 1x1 convolution with stride 1 and no padding maps each output row to one input row."""
        window = self.window(node, graph)
        return window.kernel == (1, 1) and window.stride == (1, 1) and window.padding == (0, 0, 0, 0)

    def stream_pixels(self, node, graph):
        """Two pixels (the DSP kernel's pixel pair) when the tensor has an even number of them, else
        one row: the fewer pixels a call writes, the less a shrinking conv needs beyond its input."""
        _, height, width, _ = graph.tensors[node.output].shape
        return 2 if height * width % 2 == 0 else width

    def lower(self, node, graph, prefix, pointer, in_place=False, *, kernels):
        """The conv2d kernel; in place (a row-wise conv over its input), ``stream_pixels`` per call."""
        from edgekit.codegen.kernels.conv2d import Conv2dSpec
        from edgekit.codegen.layer_calls import mac_call, streamed_call

        if in_place:
            return streamed_call(node, graph, prefix, pointer, kernels)

        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        spec = Conv2dSpec(tuple(x.shape[1:]), w.shape[0], self.window(node, graph))
        return mac_call(node, graph, "conv2d", spec, kernels, prefix, pointer, w.shape[0])


OP = Conv2d()
