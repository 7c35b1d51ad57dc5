"""fold_pad: an explicit spatial PAD whose only reader ``folds_pad`` (convolution, depthwise
convolution) -> that op with the pad added to ``attrs.padding``.

Exact: a convolution's implicit padding contributes nothing to its sums, and so does a padded value
equal to the input zero point (int8; every PAD pads with its output's zero point, which is the
convolution's input zero point) or to 0.0 (float). Models converted by TensorFlow write "SAME"
padding of stride-2 layers as an explicit PAD, which would otherwise be a copy of a whole
activation and a node that no patch stage can cut through badly.

Guards: the pad touches only the spatial axes (1, 2) of an NHWC tensor; its output has no other
reader and is not a graph output; for int8, its padding value equals the reader's input zero point.
"""

from edgekit.ops import get_op
from edgekit.ops.pad import pad_int8_value
from edgekit.passes.rewrite import bypass_node, sole_consumer


def _spatial_padding(node) -> tuple[int, int, int, int] | None:
    """The pad's (top, left, bottom, right), or None when it pads another axis."""
    pads = [tuple(int(v) for v in axis) for axis in node.attrs.pads]
    if len(pads) != 4 or pads[0] != (0, 0) or pads[3] != (0, 0):
        return None
    (top, bottom), (left, right) = pads[1], pads[2]
    return top, left, bottom, right


def _pads_with_zero(graph, node) -> bool:
    """Whether the padded value is the real 0.0 of the reader's input (float, or int8 zero point)."""
    if graph.tensors[node.output].dtype != "int8":
        return node.attrs.value == 0.0  # PADV2 pads with any constant
    return pad_int8_value(node, graph) == graph.tensors[node.output].quant.scalar_zero_point


def fold_pad(graph):
    changed = False
    for pad in list(graph.nodes):
        if pad.op != "pad":
            continue
        padding = _spatial_padding(pad)
        reader = sole_consumer(graph, pad.output)
        if (padding is None or reader is None or not get_op(reader.op, reader).folds_pad
                or reader.inputs[0] != pad.output or not _pads_with_zero(graph, pad)):
            continue
        op = get_op(reader.op, reader)
        reader.attrs = op.with_padding(reader.attrs, tuple(a + b for a, b in zip(reader.attrs.padding, padding)))
        bypass_node(graph, pad, pad.inputs[0])
        changed = True
    return graph, changed
