"""depthwise_conv2d: filter [1, KH, KW, C*M]; output channel c*M+m reads input channel c."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef
from edgekit.ops.conv_params import bias_or_zeros, finish_float, finish_int8, mac_int8_params
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


class DepthwiseConv2d(OpDef):
    name = "depthwise_conv2d"
    attrs_type = DepthwiseConv2dAttrs

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


OP = DepthwiseConv2d()
