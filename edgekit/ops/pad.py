"""pad: constant padding of every axis with ``value`` (0.0 for PAD, any constant for PADV2); int8 pads
with the value quantized like the output (the zero point for 0.0)."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef, quant_of


@dataclass
class PadAttrs:
    pads: tuple[tuple[int, int], ...] = ()  # (before, after) per axis
    value: float = 0.0


def pad_int8_value(node, graph) -> int:
    """The int8 padding value: ``value`` quantized like the output (its zero point for 0.0)."""
    return int(quant_of(graph, node.outputs[0]).quantize(np.float32(node.attrs.value)))


class Pad(OpDef):
    name = "pad"
    attrs_type = PadAttrs
    same_quant_as_input = True

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(d + b + a for d, (b, a) in zip(in_shapes[0], attrs.pads))]

    def run_float(self, attrs, inputs):
        return [np.pad(inputs[0], attrs.pads, constant_values=attrs.value)]

    def run_int8(self, node, graph, inputs):
        return [np.pad(inputs[0], node.attrs.pads, constant_values=pad_int8_value(node, graph))]


OP = Pad()
