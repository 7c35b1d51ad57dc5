"""mirror_pad: padding that mirrors the tensor at its edges (REFLECT leaves the edge element out,
SYMMETRIC repeats it), as style-transfer and super-resolution models pad before their convolutions.

int8 copies raw values, as TFLite Micro's MIRROR_PAD does (the output shares the input's
quantization): output index o of an axis of size n padded by ``before`` reads input index
i = o - before, mirrored as ``offset - 1 - i`` below 0 and ``2n - 1 - offset - i`` from n on,
with offset 1 for REFLECT and 0 for SYMMETRIC (TFLite's GetInputDimension); NumPy's pad modes
``reflect``/``symmetric`` are the same maps.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import OpDef
from edgekit.ops.pad import Pad

MODES = ("reflect", "symmetric")


@dataclass
class MirrorPadAttrs:
    pads: tuple[tuple[int, int], ...] = ()  # (before, after) per axis
    mode: str = "reflect"


def constraint_mirror_pads_fit(attrs, in_shapes) -> tuple[bool, str]:
    """One (before, after) per axis, each at most the axis size (one less for REFLECT), mode reflect or symmetric."""
    shape = in_shapes[0]
    limit = 1 if attrs.mode == "reflect" else 0
    ok = attrs.mode in MODES and len(attrs.pads) == len(shape) and all(
        0 <= before <= d - limit and 0 <= after <= d - limit for d, (before, after) in zip(shape, attrs.pads))
    return ok, f"{attrs.mode} pads {attrs.pads} of shape {list(shape)}"


class MirrorPad(OpDef):
    name = "mirror_pad"
    attrs_type = MirrorPadAttrs
    constraints = (constraint_mirror_pads_fit,)
    same_quant_as_input = True
    infer_shapes = Pad.infer_shapes  # each axis grows by its (before, after)

    def run_float(self, attrs, inputs):
        return [np.pad(inputs[0], attrs.pads, mode=attrs.mode)]

    def run_int8(self, node, graph, inputs):
        return [np.pad(inputs[0], node.attrs.pads, mode=node.attrs.mode)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.pad import PadSpec, mirror_pad_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        spec = PadSpec(tuple(int(d) for d in x.shape), tuple((int(b), int(a)) for b, a in node.attrs.pads))
        return kernel_call(node, mirror_pad_kernel(spec, node.attrs.mode == "reflect"),
                           {"input": pointer(node.inputs[0]), "output": pointer(node.output)})


OP = MirrorPad()
