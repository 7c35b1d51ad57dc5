"""Description: patch-based inference geometry (MCUNetV2): the region every layer computes per patch.

The patch stage is a chain of spatial layers from the stage input to the split output. The split
output is cut into n x n patches: its rows and its columns each into n near-equal contiguous ranges
(the first ``size % n`` ranges one longer). Along one axis, output index o of a layer with kernel k,
stride s, dilation d and padding p_before reads the input indices

    o * s - p_before + j * d        for j in [0, k)

Every layer is separable in rows and columns, so the exact set of pixels a patch depends on is, at
every layer, a product of one row set and one column set. Walking the chain backwards from the
patch, those sets follow from the formula above, keeping only indices inside the tensor. For each
layer and patch:

- ``output``: the bounding box of the outputs the patch needs; the layer computes all of it.
- ``input``: the bounding box of the inputs those outputs read (the previous layer's ``output``).
- ``window``: what computing all of ``output`` reads, padding included; it may reach past the
  tensor. ``padding`` is the window minus the input region, per side: the kernel runs on the input
  region padded by that much and computes ``output``.

With d = 1 and s <= k the needed sets have no holes and the window is simply the input region plus
the tensor padding it covers. With d > 1 or s > k, needed sets can have holes: an output in a hole
reads pixels outside the input region, which the padded kernel replaces by padding, so its value is
garbage, but no needed output ever reads it. The padding that a needed output reads lies outside
the tensor, so filling all padding with the zero point (or leaving it out of an average) matches
the full layer bit for bit on every needed pixel, and the patch's final outputs are exact.
Pointwise and elementwise layers (k = 1, s = 1, no padding) pass regions through unchanged. A
region can be empty (zero area) in the degenerate case of outputs that read only padding.

``patch_stage.py`` does the same on a DAG (residual adds), with bounding boxes instead of exact
sets; both use ``SpatialLayer.window`` (per axis, ``axis_window``) for the window of an output box.

Recomputation: neighbouring patches overlap in their input regions, so early layers compute some
pixels more than once. ``PatchPlan.mac_ratio`` is the MACs of all patches over the MACs of running
the same layers layer by layer (1.0 means no overhead).
"""

from dataclasses import dataclass

from edgekit.ops.window import Window


@dataclass(frozen=True)
class Region:
    """Rows [rows[0], rows[1]) and columns [cols[0], cols[1]) of a feature map."""

    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def height(self) -> int:
        return self.rows[1] - self.rows[0]

    @property
    def width(self) -> int:
        return self.cols[1] - self.cols[0]

    @property
    def area(self) -> int:
        return self.height * self.width

    @property
    def is_empty(self) -> bool:
        return self.height <= 0 or self.width <= 0

    def union(self, other: "Region") -> "Region":
        """The bounding box of both regions (per axis, the smallest range covering both); an empty
        region adds nothing."""
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        return Region((min(self.rows[0], other.rows[0]), max(self.rows[1], other.rows[1])),
                      (min(self.cols[0], other.cols[0]), max(self.cols[1], other.cols[1])))

    def clipped(self, hw: tuple[int, int]) -> "Region":
        """The part of the region inside an ``hw`` feature map. Along an axis where nothing is
        inside, the result is empty but stays within the original range, so that the region's
        distance to each end of the range (the padding of a window) is never negative."""
        return Region(_clip_span(self.rows, hw[0]), _clip_span(self.cols, hw[1]))


def _clip_span(span: tuple[int, int], size: int) -> tuple[int, int]:
    low, high = max(span[0], 0), min(span[1], size)
    if low < high:
        return low, high
    anchor = min(max(span[0], 0), span[1])
    return anchor, anchor


@dataclass(frozen=True)
class SpatialLayer:
    """One layer of the patch stage (conv, depthwise, pool, pad or elementwise): its input size and
    its op's window ``geometry`` (kernel, stride, dilation, padding; ``OpDef.window``).

    ``macs_per_pixel`` is the work of one output pixel over all its channels; it only matters
    for ``PatchPlan.mac_ratio``. Elements are int8, so a region of c channels takes area * c bytes.
    """

    in_hw: tuple[int, int]
    geometry: Window = Window()
    in_channels: int = 1
    out_channels: int = 1
    macs_per_pixel: int = 1
    name: str = ""

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.geometry.output_hw(self.in_hw)

    def window(self, output: Region) -> Region:
        """What computing every pixel of ``output`` reads, padding included (may reach past the input)."""
        geometry = self.geometry
        return Region(*(axis_window(span, geometry.kernel[axis], geometry.stride[axis], geometry.dilation[axis],
                                    geometry.padding[axis])
                        for axis, span in enumerate((output.rows, output.cols))))


@dataclass(frozen=True)
class LayerWindow:
    """What one layer does for one patch: compute ``output`` from ``input`` padded to ``window``."""

    output: Region
    window: Region
    input: Region

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right): how far the window reaches past the input region."""
        return (self.input.rows[0] - self.window.rows[0], self.input.cols[0] - self.window.cols[0],
                self.window.rows[1] - self.input.rows[1], self.window.cols[1] - self.input.cols[1])


@dataclass(frozen=True)
class Patch:
    """One patch of the n x n grid: ``index`` is (row, col), ``layers`` follow the chain's order."""

    index: tuple[int, int]
    layers: tuple[LayerWindow, ...]


@dataclass(frozen=True)
class PatchPlan:
    """The geometry of every layer for every patch (row-major) of an n x n split."""

    layers: tuple[SpatialLayer, ...]
    n: int
    patches: tuple[Patch, ...]

    def region_bytes(self, patch: Patch) -> list[tuple[int, int]]:
        """Per layer, the bytes of the patch's (input region, output region)."""
        return [(w.input.area * layer.in_channels, w.output.area * layer.out_channels)
                for layer, w in zip(self.layers, patch.layers)]

    @property
    def peak_patch_bytes(self) -> int:
        """The largest input plus output region of one layer on one patch: the per-patch working
        set (the full stage input and split output come on top of it)."""
        return max(sum(pair) for patch in self.patches for pair in self.region_bytes(patch))

    @property
    def mac_ratio(self) -> float:
        """MACs of patch-by-patch execution over MACs of layer-by-layer execution."""
        full = sum(layer.out_hw[0] * layer.out_hw[1] * layer.macs_per_pixel for layer in self.layers)
        patched = sum(w.output.area * layer.macs_per_pixel
                      for patch in self.patches for layer, w in zip(self.layers, patch.layers))
        return patched / full if full else 1.0


def split_ranges(size: int, n: int) -> list[tuple[int, int]]:
    """[start, end) of n near-equal contiguous ranges covering [0, size), longer ones first."""
    base, extra = divmod(size, n)
    bounds = [0]
    for index in range(n):
        bounds.append(bounds[-1] + base + (1 if index < extra else 0))
    return list(zip(bounds[:-1], bounds[1:]))


def axis_window(span: tuple[int, int], kernel: int, stride: int, dilation: int,
                pad_before: int) -> tuple[int, int]:
    """Along one axis, [first, last + 1) of the input indices (padding included) that outputs
    [span[0], span[1]) read: from the first tap of the first output to the last tap of the last
    one. An empty span reads nothing and stays where it is."""
    first, end = span
    if first >= end:
        return span
    return first * stride - pad_before, (end - 1) * stride - pad_before + dilation * (kernel - 1) + 1


def _span(indices) -> tuple[int, int]:
    """[first, last + 1) of a set of indices; (0, 0) when it is empty."""
    return (min(indices), max(indices) + 1) if indices else (0, 0)


def _step_back(layer: SpatialLayer, needed: tuple[frozenset[int], frozenset[int]]):
    """One layer, backwards: its LayerWindow for the ``needed`` (rows, cols) of its output, and the
    (rows, cols) of its input that those read. ``padding[axis]`` is top for rows, left for cols."""
    spans, reads = [], []
    geometry = layer.geometry
    for axis, indices in enumerate(needed):
        kernel, stride, dilation = geometry.kernel[axis], geometry.stride[axis], geometry.dilation[axis]
        pad_before = geometry.padding[axis]
        taps = {o * stride - pad_before + j * dilation for o in indices for j in range(kernel)}
        reads.append(frozenset(t for t in taps if 0 <= t < layer.in_hw[axis]))
        spans.append(_span(indices))
    output = Region(*spans)
    window = LayerWindow(output, layer.window(output), Region(_span(reads[0]), _span(reads[1])))
    return window, tuple(reads)


def plan_patches(layers: list[SpatialLayer], n: int) -> PatchPlan:
    """The geometry of running ``layers`` (a chain) on n x n patches of the last layer's output."""
    if not layers:
        raise ValueError("the patch stage needs at least one layer")
    for before, after in zip(layers, layers[1:]):
        if before.out_hw != after.in_hw:
            raise ValueError(f"layer {after.name!r} reads {after.in_hw} but layer {before.name!r} "
                             f"produces {before.out_hw}; the layers must form a chain")
    out_h, out_w = layers[-1].out_hw
    if not 1 <= n <= min(out_h, out_w):
        raise ValueError(f"cannot split a {out_h}x{out_w} output into {n}x{n} patches; "
                         f"choose n from 1 to {min(out_h, out_w)}")
    patches = []
    for i, rows in enumerate(split_ranges(out_h, n)):
        for j, cols in enumerate(split_ranges(out_w, n)):
            needed = (frozenset(range(*rows)), frozenset(range(*cols)))
            windows = []
            for layer in reversed(layers):
                window, needed = _step_back(layer, needed)
                windows.append(window)
            patches.append(Patch((i, j), tuple(reversed(windows))))
    return PatchPlan(tuple(layers), n, tuple(patches))
