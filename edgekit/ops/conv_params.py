"""What the multiply-accumulate ops (conv2d, depthwise_conv2d, fully_connected) share: their base
classes and their integer parameters.

TFLite derives one multiplier per output channel as input_scale * filter_scale[c] / output_scale,
computed in double from the float32 scales, then splits it into a Q31 multiplier and a shift.
The interpreter and the code generator both call :func:`mac_int8_params`, so the firmware and the
reference can never disagree about these numbers.
"""

from dataclasses import dataclass, replace

import numpy as np

from edgekit.fixedpoint import quantize_multipliers, requantize
from edgekit.ops.base import OpDef, activation_range, apply_activation, quant_of
from edgekit.ops.window import Window


def bias_rule(weight_channel_axis: int):
    """The bias constraint of a MAC op whose weights hold the output channels along ``weight_channel_axis``."""
    def constraint_bias_per_output_channel(attrs, in_shapes) -> tuple[bool, str]:
        """The bias, when there is one, holds one value per output channel."""
        if len(in_shapes) < 3:
            return True, ""
        channels = in_shapes[1][weight_channel_axis]
        return tuple(in_shapes[2]) == (channels,), f"bias {list(in_shapes[2])} for {channels} output channels"
    return constraint_bias_per_output_channel


class MacOp(OpDef):
    """An op with int8 weights (input 1, per output channel along ``weight_channel_axis``), an optional
    int32 bias (input 2) and a fused activation; a following ReLU/ReLU6 fuses into it."""

    fuses_activation = True


class SpatialMacOp(MacOp):
    """A convolution (conv2d, depthwise_conv2d): its filter keeps the kernel in dims 1:3, its attrs hold
    stride, dilation and padding. A following batch norm folds into it, a preceding zero pad folds into
    its padding, and it runs on patches."""

    folds_batch_norm = True
    folds_pad = True
    patchable = True

    def window(self, node, graph) -> Window:
        attrs = node.attrs
        return Window(graph.tensors[node.inputs[1]].shape[1:3], attrs.stride, attrs.dilation, attrs.padding)

    def with_padding(self, attrs, padding):
        return replace(attrs, padding=padding)


@dataclass(frozen=True)
class MacInt8Params:
    """Everything but the tensors that an int8 MAC kernel needs."""

    input_offset: int
    output_offset: int
    multiplier: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int


def mac_int8_params(node, graph, out_channels: int) -> MacInt8Params:
    in_quant = quant_of(graph, node.inputs[0])
    w_quant = quant_of(graph, node.inputs[1])
    out_quant = quant_of(graph, node.outputs[0])
    w_scales = np.broadcast_to(w_quant.scale.astype(np.float64), (out_channels,))
    real = np.float64(in_quant.scalar_scale) * w_scales / np.float64(out_quant.scalar_scale)
    multiplier, shift = quantize_multipliers(real)
    clamp = activation_range(node.attrs.activation, out_quant)
    return MacInt8Params(
        input_offset=-in_quant.scalar_zero_point,
        output_offset=out_quant.scalar_zero_point,
        multiplier=multiplier,
        shift=shift,
        act_min=clamp.act_min,
        act_max=clamp.act_max,
    )


def bias_or_zeros(graph, node, out_channels: int, dtype) -> np.ndarray:
    """The node's bias constant, or zeros when it has none."""
    if len(node.inputs) > 2:
        return graph.tensors[node.inputs[2]].data
    return np.zeros(out_channels, dtype=dtype)


def finish_float(acc: np.ndarray, inputs: list, activation) -> np.ndarray:
    """Float accumulators + the optional bias input -> fused activation, as float32."""
    if len(inputs) > 2:
        acc = acc + inputs[2]
    return apply_activation(acc, activation).astype(np.float32)


def finish_int8(acc: np.ndarray, bias, mult, shift, output_offset, act_min, act_max) -> np.ndarray:
    """Exact float64 accumulators + bias -> requantized, clamped int8 (channels last)."""
    acc = np.rint(acc).astype(np.int64) + np.asarray(bias, dtype=np.int64)
    return requantize(acc, mult, shift, output_offset, act_min, act_max)
