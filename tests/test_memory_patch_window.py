"""Patch-based inference geometry against brute force on random layer stacks.

The brute force marks, for every output pixel of a patch, every input pixel it depends on by
tracing each tap through the chain on 2-D masks, with no use of separability or of the formulas in
patch_window.py. A second check runs the chain patch by patch on real numbers (window sums with
zero padding, exact in float64) and compares with the layer-by-layer result.
"""

import random

import numpy as np
import pytest

from edgekit.memory.patch_window import Region, SpatialLayer, plan_patches, split_ranges
from edgekit.ops.window import Window, pad_hw, same_padding, windows


def random_stack(rng: random.Random) -> list[SpatialLayer]:
    """1 to 4 layers: strides 1-2, kernels 1-7, SAME or VALID padding, dilations 1-2."""
    hw = (rng.randint(4, 28), rng.randint(4, 28))
    layers = []
    for index in range(rng.randint(1, 4)):
        kernel = (rng.randint(1, 7), rng.randint(1, 7))
        stride = (rng.choice((1, 2)), rng.choice((1, 2)))
        dilation = (rng.choice((1, 2)), rng.choice((1, 2)))
        if rng.random() < 0.5:
            rows, cols = (same_padding(size, k, s, d) for size, k, s, d in zip(hw, kernel, stride, dilation))
            padding = (rows[0], cols[0], rows[1], cols[1])
        else:
            padding = (0, 0, 0, 0)
        layer = SpatialLayer(hw, Window(kernel, stride, dilation, padding), macs_per_pixel=rng.randint(1, 9),
                             name=f"layer{index}")
        if min(layer.out_hw) < 1:
            break
        layers.append(layer)
        hw = layer.out_hw
    return layers


def taps(layer: SpatialLayer, y: int, x: int):
    """Every (row, col) output pixel (y, x) reads, padding included."""
    top, left = layer.geometry.padding[0], layer.geometry.padding[1]
    for i in range(layer.geometry.kernel[0]):
        for j in range(layer.geometry.kernel[1]):
            yield y * layer.geometry.stride[0] - top + i * layer.geometry.dilation[0], x * layer.geometry.stride[1] - left + j * layer.geometry.dilation[1]


def depends_on(layer: SpatialLayer, needed: np.ndarray) -> np.ndarray:
    """The input pixels (inside the tensor) that the marked output pixels read."""
    marked = np.zeros(layer.in_hw, dtype=bool)
    for y, x in zip(*np.nonzero(needed)):
        for row, col in taps(layer, y, x):
            if 0 <= row < layer.in_hw[0] and 0 <= col < layer.in_hw[1]:
                marked[row, col] = True
    return marked


def bounding_box(mask: np.ndarray) -> Region | None:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return Region((int(rows.min()), int(rows.max()) + 1), (int(cols.min()), int(cols.max()) + 1))


def random_cases(count: int, seed: int):
    rng = random.Random(seed)
    while count:
        layers = random_stack(rng)
        if layers:
            out_h, out_w = layers[-1].out_hw
            count -= 1
            yield layers, rng.randint(1, min(out_h, out_w, 5))


CASES = list(random_cases(150, seed=7))


@pytest.mark.parametrize("layers, n", CASES[:60])
def test_input_region_is_bounding_box_of_traced_dependencies(layers, n):
    plan = plan_patches(layers, n)
    for patch in plan.patches:
        needed = np.zeros(layers[-1].out_hw, dtype=bool)
        last = patch.layers[-1].output
        needed[last.rows[0]:last.rows[1], last.cols[0]:last.cols[1]] = True
        for layer, window in reversed(list(zip(layers, patch.layers))):
            assert bounding_box(needed) in (window.output, None)
            needed = depends_on(layer, needed)
            expected = bounding_box(needed)
            assert window.input == expected or (expected is None and window.input.area == 0)


@pytest.mark.parametrize("layers, n", CASES)
def test_patches_tile_the_split_output_exactly(layers, n):
    count = np.zeros(layers[-1].out_hw, dtype=int)
    for patch in plan_patches(layers, n).patches:
        out = patch.layers[-1].output
        count[out.rows[0]:out.rows[1], out.cols[0]:out.cols[1]] += 1
    assert (count == 1).all()


@pytest.mark.parametrize("layers, n", CASES)
def test_window_and_padding(layers, n):
    """The window spans every tap of the computed output, padding included; padding = window - input."""
    for patch in plan_patches(layers, n).patches:
        for layer, window in zip(layers, patch.layers):
            out = window.output
            if out.area == 0:
                continue
            read = [tap for y in range(*out.rows) for x in range(*out.cols) for tap in taps(layer, y, x)]
            rows, cols = zip(*read)
            assert window.window == Region((min(rows), max(rows) + 1), (min(cols), max(cols) + 1))
            top, left, bottom, right = window.padding
            assert min(window.padding) >= 0
            assert top + window.input.height + bottom == window.window.height
            assert left + window.input.width + right == window.window.width
            if window.input.area:  # the part of the window outside the tensor is padding
                assert top >= -window.window.rows[0] and left >= -window.window.cols[0]
                assert bottom >= window.window.rows[1] - layer.in_hw[0]
                assert right >= window.window.cols[1] - layer.in_hw[1]


def window_sum(x: np.ndarray, layer: SpatialLayer, padding) -> np.ndarray:
    """Sum over each dilated window of a [1, H, W, 1] array zero-padded by ``padding``."""
    padded = pad_hw(x, padding)
    eff_h = layer.geometry.dilation[0] * (layer.geometry.kernel[0] - 1) + 1
    eff_w = layer.geometry.dilation[1] * (layer.geometry.kernel[1] - 1) + 1
    out_hw = ((padded.shape[1] - eff_h) // layer.geometry.stride[0] + 1, (padded.shape[2] - eff_w) // layer.geometry.stride[1] + 1)
    return windows(padded, layer.geometry.kernel, layer.geometry.stride, layer.geometry.dilation, out_hw).sum(axis=(2, 3))[np.newaxis]


@pytest.mark.parametrize("layers, n", CASES[:80])
def test_patch_by_patch_equals_layer_by_layer(layers, n):
    """Running each layer on its padded input region gives the full result on every patch."""
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, size=(1, *layers[0].in_hw, 1)).astype(np.float64)
    full = x
    for layer in layers:
        full = window_sum(full, layer, layer.geometry.padding)
    for patch in plan_patches(layers, n).patches:
        first = patch.layers[0].input
        value = x[:, first.rows[0]:first.rows[1], first.cols[0]:first.cols[1]]
        for layer, window in zip(layers, patch.layers):
            if window.output.area == 0:  # nothing downstream needs this layer (degenerate padding)
                value = np.zeros((1, window.output.height, window.output.width, 1))
                continue
            value = window_sum(value, layer, window.padding)
            assert value.shape[1:3] == (window.output.height, window.output.width)
        out = patch.layers[-1].output
        np.testing.assert_array_equal(value, full[:, out.rows[0]:out.rows[1], out.cols[0]:out.cols[1]])


def test_two_3x3_layers_recompute_the_halo():
    """Two 3x3 SAME layers on 8x8, 2x2 patches: layer 1 computes 5x5 per patch instead of 4x4."""
    layers = [SpatialLayer((8, 8), Window((3, 3), padding=(1, 1, 1, 1)), in_channels=3, out_channels=8),
              SpatialLayer((8, 8), Window((3, 3), padding=(1, 1, 1, 1)), in_channels=8, out_channels=4)]
    plan = plan_patches(layers, 2)
    top_left = plan.patches[0].layers
    assert top_left[1].output == Region((0, 4), (0, 4))
    assert top_left[1].input == top_left[0].output == Region((0, 5), (0, 5))
    assert top_left[0].input == Region((0, 6), (0, 6))
    assert top_left[0].padding == (1, 1, 0, 0)
    assert plan.mac_ratio == (4 * 25 + 64) / (64 + 64)
    assert plan.region_bytes(plan.patches[0]) == [(36 * 3, 25 * 8), (25 * 8, 16 * 4)]
    assert plan.peak_patch_bytes == 36 * 3 + 25 * 8


def test_one_patch_has_no_overhead():
    layers = [SpatialLayer((9, 9), Window((3, 3), (2, 2), padding=(1, 1, 1, 1))), SpatialLayer((5, 5))]
    assert plan_patches(layers, 1).mac_ratio == 1.0


def test_split_ranges_are_near_equal_and_contiguous():
    assert split_ranges(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_ranges(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_rejects_a_broken_chain_and_too_many_patches():
    with pytest.raises(ValueError, match="must form a chain"):
        plan_patches([SpatialLayer((8, 8), Window((3, 3))), SpatialLayer((8, 8))], 2)
    with pytest.raises(ValueError, match="choose n from 1 to 6"):
        plan_patches([SpatialLayer((8, 8), Window((3, 3)))], 7)
