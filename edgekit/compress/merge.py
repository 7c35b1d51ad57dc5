"""Exact merging of a segment's convolutions into one convolution.

Two convolutions with no activation between them and no padding on the second compose into one:
W = W2 (full 2-D convolution) W1 summed over the middle channels, b = b2 + sum(W2) b1, kernel
k = k1 + (k2 - 1) s1, stride s1 s2, padding that of the first. The segment layout moves every
padding to the first convolution (``adjust_padding``), which is what makes the merge exact: the
unmerged network that is fine-tuned (compress/network.py) uses the same layout. Depthwise with
depthwise stays depthwise; anything with a dense convolution becomes dense. A residual whose two
ends lie in the segment adds its skip map (an identity, or a crop of an inner tensor) into the kernel,
the identity landing on the centre tap.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.compress.chain import Chain, ConvLayer, Residual, depthwise_to_dense
from edgekit.compress.segment import Plan, Segment, folds_residual


@dataclass(frozen=True)
class SegmentLayout:
    """How the unmerged segment runs after its padding moved to its first convolution.

    ``padding[k]``: the padding convolution k runs with; ``border[k]``: extra rows/columns
    (top, left, bottom, right) that the tensor at position k carries because of the moved padding;
    ``conv_activation[k]`` / ``add_activation[k]``: the activations still applied at k.
    """

    padding: dict[int, tuple[int, int, int, int]]
    border: dict[int, tuple[int, int, int, int]]
    conv_activation: dict[int, str | None]
    add_activation: dict[int, str | None]
    folded: tuple[Residual, ...]


def segment_layout(chain: Chain, segment: Segment) -> SegmentLayout:
    convs = segment.convs
    padding = {k: (0, 0, 0, 0) for k in convs}
    total = [0, 0, 0, 0]
    border = {}
    for position in range(segment.end, segment.start - 1, -1):
        border[position] = tuple(total)
        if position in convs:
            layer = chain.layers[position - 1]
            total = [layer.padding[side] + layer.stride[side % 2] * total[side] for side in range(4)]
    border[segment.start] = (0, 0, 0, 0)  # the segment input is not padded: its first convolution pads
    padding[convs[0]] = tuple(total)
    folded = tuple(r for r in chain.residuals if folds_residual(segment, r.start, r.end))
    conv_activation, add_activation = {}, {}
    for position in range(segment.start + 1, segment.end + 1):
        residual = chain.residual_ending_at(position)
        last = position == segment.end and segment.keep_activation
        keeps_conv = last and (residual is None or residual not in folded)
        conv_activation[position] = chain.layers[position - 1].activation if keeps_conv else None
        add_activation[position] = residual.activation if (residual and last) else None
    return SegmentLayout(padding, border, conv_activation, add_activation, folded)


def skip_crop(layout: SegmentLayout, residual: Residual) -> tuple[int, int, int, int]:
    """Rows/columns to cut from the skip tensor (negative: zeros to add) so it aligns with the add."""
    start, end = layout.border[residual.start], layout.border[residual.end]
    return tuple(start[side] - end[side] for side in range(4))


@dataclass
class LinearMap:
    """A convolution from the segment input: weight dense [O, KH, KW, I] or depthwise [KH, KW, C]."""

    weight: np.ndarray
    bias: np.ndarray
    depthwise: bool
    stride: tuple[int, int]
    top_left: tuple[int, int]  # padding before the first row/column, in input pixels
    out_hw: tuple[int, int]

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[0:2] if self.depthwise else self.weight.shape[1:3]

    def dense(self) -> np.ndarray:
        return depthwise_to_dense(self.weight) if self.depthwise else self.weight


def identity_map(hw: tuple[int, int], channels: int) -> LinearMap:
    return LinearMap(np.ones((1, 1, channels)), np.zeros(channels), True, (1, 1), (0, 0), tuple(hw))


def first_map(layer: ConvLayer, padding) -> LinearMap:
    out_hw = _out_hw(layer.in_shape[:2], layer.kernel, layer.stride, padding)
    return LinearMap(layer.weight, layer.bias, layer.depthwise, layer.stride, (padding[0], padding[1]), out_hw)


def _out_hw(in_hw, kernel, stride, padding) -> tuple[int, int]:
    return tuple((in_hw[a] + padding[a] + padding[a + 2] - kernel[a]) // stride[a] + 1 for a in range(2))


def compose(first: LinearMap, layer: ConvLayer) -> LinearMap:
    """``layer`` (run without padding) applied after ``first``."""
    s1 = first.stride
    k2 = layer.kernel
    kh = first.kernel[0] + (k2[0] - 1) * s1[0]
    kw = first.kernel[1] + (k2[1] - 1) * s1[1]
    depthwise = first.depthwise and layer.depthwise
    w1 = first.weight if depthwise else first.dense()
    w2 = layer.weight if depthwise else layer.dense_weight()
    if depthwise:
        weight = np.zeros((kh, kw, w1.shape[2]))
        for a in range(k2[0]):
            for b in range(k2[1]):
                rows, cols = a * s1[0], b * s1[1]
                weight[rows:rows + w1.shape[0], cols:cols + w1.shape[1]] += w2[a, b] * w1
        bias = layer.bias + w2.sum(axis=(0, 1)) * first.bias
    else:
        weight = np.zeros((w2.shape[0], kh, kw, w1.shape[3]))
        for a in range(k2[0]):
            for b in range(k2[1]):
                rows, cols = a * s1[0], b * s1[1]
                weight[:, rows:rows + w1.shape[1], cols:cols + w1.shape[2]] += np.einsum(
                    "om,mijc->oijc", w2[:, a, b, :], w1)
        bias = layer.bias + w2.sum(axis=(1, 2)) @ first.bias
    stride = (s1[0] * layer.stride[0], s1[1] * layer.stride[1])
    out_hw = _out_hw(first.out_hw, k2, layer.stride, (0, 0, 0, 0))
    return LinearMap(weight, bias, depthwise, stride, first.top_left, out_hw)


def crop(source: LinearMap, cut: tuple[int, int, int, int]) -> LinearMap:
    """The map to ``source``'s tensor with ``cut`` rows/columns removed (negative: zeros added)."""
    top_left = (source.top_left[0] - cut[0] * source.stride[0], source.top_left[1] - cut[1] * source.stride[1])
    out_hw = (source.out_hw[0] - cut[0] - cut[2], source.out_hw[1] - cut[1] - cut[3])
    return LinearMap(source.weight, source.bias, source.depthwise, source.stride, top_left, out_hw)


def add(left: LinearMap, right: LinearMap) -> LinearMap:
    """The sum of two maps onto the same grid: one kernel over the union of their windows."""
    if left.stride != right.stride or left.out_hw != right.out_hw:
        raise ValueError(f"cannot add maps on different grids ({left.stride}, {left.out_hw}) and "
                         f"({right.stride}, {right.out_hw})")
    top = max(left.top_left[0], right.top_left[0])
    lft = max(left.top_left[1], right.top_left[1])
    depthwise = left.depthwise and right.depthwise
    parts = [(m, top - m.top_left[0], lft - m.top_left[1]) for m in (left, right)]
    kh = max(r + m.kernel[0] for m, r, _ in parts)
    kw = max(c + m.kernel[1] for m, _, c in parts)
    if depthwise:
        weight = np.zeros((kh, kw, left.weight.shape[2]))
        for m, r, c in parts:
            weight[r:r + m.kernel[0], c:c + m.kernel[1]] += m.weight
    else:
        first = left.dense()
        weight = np.zeros((first.shape[0], kh, kw, first.shape[3]))
        for m, r, c in parts:
            weight[:, r:r + m.kernel[0], c:c + m.kernel[1]] += m.dense()
    return LinearMap(weight, left.bias + right.bias, depthwise, left.stride, (top, lft), left.out_hw)


def merge_segment(chain: Chain, segment: Segment) -> ConvLayer:
    """The one convolution equal to the segment's unmerged layout (float64, exact up to rounding)."""
    layout = segment_layout(chain, segment)
    in_shape = chain.shape_at(segment.start)
    convs = segment.convs
    maps = {segment.start: identity_map(in_shape[:2], in_shape[2])}
    for position in range(segment.start + 1, segment.end + 1):
        if position not in convs:
            maps[position] = maps[position - 1]
        elif position == convs[0]:
            maps[position] = first_map(chain.layers[position - 1], layout.padding[position])
        else:
            maps[position] = compose(maps[position - 1], chain.layers[position - 1])
        residual = chain.residual_ending_at(position)
        if residual in layout.folded:
            maps[position] = add(maps[position], crop(maps[residual.start], skip_crop(layout, residual)))
    return _to_layer(maps[segment.end], _segment_activation(chain, segment, layout), in_shape,
                     chain.shape_at(segment.end)[2])


def merged_geometry(chain: Chain, segment: Segment) -> ConvLayer:
    """The merged convolution's shapes without computing its weights (tables need only these): kernel
    and stride from the composition rule, padding from the layout. Its weight is a zero-strided view."""
    from edgekit.compress.segment import merged_kernel

    layout = segment_layout(chain, segment)
    convs = segment.convs
    depthwise = all(chain.layers[k - 1].depthwise for k in convs)
    kernel = merged_kernel(chain, segment)
    stride = (1, 1)
    for k in convs:
        stride = (stride[0] * chain.layers[k - 1].stride[0], stride[1] * chain.layers[k - 1].stride[1])
    in_shape, out_shape = chain.shape_at(segment.start), chain.shape_at(segment.end)
    shape = kernel + (in_shape[2],) if depthwise else (out_shape[2],) + kernel + (in_shape[2],)
    weight = np.broadcast_to(np.float64(0), shape)
    top_left = layout.padding[convs[0]][:2]
    linear = LinearMap(weight, np.broadcast_to(np.float64(0), (out_shape[2],)), depthwise, stride, top_left,
                       out_shape[:2])
    return _to_layer(linear, _segment_activation(chain, segment, layout), in_shape, out_shape[2])


def _segment_activation(chain: Chain, segment: Segment, layout: SegmentLayout):
    """The merged convolution's activation: the folded add's, else the last convolution's."""
    end_residual = chain.residual_ending_at(segment.end)
    return (layout.add_activation[segment.end] if end_residual in layout.folded
            else layout.conv_activation[segment.end])


def _to_layer(linear: LinearMap, activation, in_shape, out_channels) -> ConvLayer:
    padding = [linear.top_left[0], linear.top_left[1], 0, 0]
    for axis in range(2):
        needed = (linear.out_hw[axis] - 1) * linear.stride[axis] + linear.kernel[axis] - in_shape[axis] - \
            linear.top_left[axis]
        slack = linear.stride[axis] - 1  # any bottom/right padding in [needed, needed + slack] gives the same size
        padding[axis + 2] = linear.top_left[axis] if needed <= linear.top_left[axis] <= needed + slack \
            else max(needed, 0)
        if needed < -(linear.stride[axis] - 1) or min(linear.top_left) < 0:
            raise ValueError(f"merged map does not tile its input (padding {padding}); this is a bug")
    out_shape = (linear.out_hw[0], linear.out_hw[1], out_channels)
    return ConvLayer(linear.weight, linear.bias, linear.stride, tuple(padding), activation, linear.depthwise,
                     tuple(in_shape), out_shape)


def merge_plan(chain: Chain, plan: Plan) -> Chain:
    """The chain with every segment of ``plan`` merged; residuals not folded stay as adds."""
    new_index = {0: 0}
    layers = []
    for segment in plan.segments:
        layers.append(merge_segment(chain, segment))
        new_index[segment.end] = len(layers)
    residuals = []
    for segment in plan.segments:
        layout = segment_layout(chain, segment)
        residual = chain.residual_ending_at(segment.end)
        if residual is not None and residual not in layout.folded:
            residuals.append(Residual(new_index[residual.start], new_index[segment.end],
                                      layout.add_activation[segment.end]))
    return Chain(layers, residuals, chain.input_shape, chain.head.copy(), chain.name)
