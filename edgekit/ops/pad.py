"""pad: constant padding of every axis with ``value`` (0.0 for PAD, any constant for PADV2); int8 pads
with the value quantized like the output (the zero point for 0.0)."""

from dataclasses import dataclass, replace

import numpy as np

from edgekit.ops.base import OpDef, quant_of
from edgekit.ops.window import Window


@dataclass
class PadAttrs:
    pads: tuple[tuple[int, int], ...] = ()  # (before, after) per axis
    value: float = 0.0


def pad_int8_value(node, graph) -> int:
    """The int8 padding value: ``value`` quantized like the output (its zero point for 0.0)."""
    return int(quant_of(graph, node.outputs[0]).quantize(np.float32(node.attrs.value)))


def constraint_spatial_pads(node, graph) -> tuple[bool, str]:
    """On patches, a pad must pad an NHWC tensor and leave its batch axis alone."""
    pads = node.attrs.pads
    return len(pads) == 4 and tuple(pads[0]) == (0, 0), f"pads {pads}"


def constraint_pads_per_axis(attrs, in_shapes) -> tuple[bool, str]:
    """The pads give (before, after) for each axis of the input, none of them negative."""
    ok = len(attrs.pads) == len(in_shapes[0]) and all(
        len(pair) == 2 and min(pair) >= 0 for pair in attrs.pads)
    return ok, f"pads {attrs.pads} of shape {list(in_shapes[0])}"


class Pad(OpDef):
    name = "pad"
    attrs_type = PadAttrs
    constraints = (constraint_pads_per_axis,)
    same_quant_as_input = True
    patchable = True
    patch_constraints = (constraint_spatial_pads,)

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(d + b + a for d, (b, a) in zip(in_shapes[0], attrs.pads))]

    def run_float(self, attrs, inputs):
        return [np.pad(inputs[0], attrs.pads, constant_values=attrs.value)]

    def run_int8(self, node, graph, inputs):
        return [np.pad(inputs[0], node.attrs.pads, constant_values=pad_int8_value(node, graph))]

    def is_identity(self, node, graph):
        return all(before == 0 and after == 0 for before, after in node.attrs.pads)

    def window(self, node, graph):
        """A spatial pad is a 1x1 window with padding; channel pads need no window."""
        (top, bottom), (left, right) = node.attrs.pads[1], node.attrs.pads[2]
        return Window(padding=(top, left, bottom, right))

    def with_padding(self, attrs, padding):
        top, left, bottom, right = padding
        return replace(attrs, pads=((0, 0), (top, bottom), (left, right), attrs.pads[3]))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.pad import PadSpec, pad_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        pads = tuple((int(before), int(after)) for before, after in node.attrs.pads)
        spec = PadSpec(tuple(int(d) for d in x.shape), pads)
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  "pad_value": pad_int8_value(node, graph)}
        return kernel_call(node, pad_kernel(spec), values)


OP = Pad()
