"""resize_nearest and resize_bilinear: NHWC spatial resizing to a static (height, width).

Both follow TFLite's reference kernels. Nearest picks source rows and columns in float32 exactly as
GetNearestNeighbor does (so int8 is a pure copy and keeps its quantization). Bilinear on int8 is
ResizeBilinearInteger: source coordinates in 10-bit fixed point, four products of int8 values and
10-bit weights summed in int64, rounded half away from zero by 2**20; the quantization is kept.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import OpDef


@dataclass
class ResizeAttrs:
    size: tuple[int, int] = (1, 1)  # output (height, width)
    align_corners: bool = False
    half_pixel_centers: bool = False


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite's GetNearestNeighbor for every output index (float32 arithmetic, as in C)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    position = (np.arange(out_size, dtype=np.float32) + offset) * scale
    if align_corners:
        index = np.sign(position) * np.floor(np.abs(position) + np.float32(0.5))  # TfLiteRound
    else:
        index = np.floor(position)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel_centers else index


def bilinear_scale_10(in_size: int, out_size: int, align_corners: bool) -> int:
    """The source step per output pixel in 10-bit fixed point, rounded as ResizeBilinearInteger does."""
    if align_corners and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def bilinear_taps(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """Per output index: (lower source index, upper source index, weight of the upper in 1/1024)."""
    scale = bilinear_scale_10(in_size, out_size, align_corners)
    value = np.arange(out_size, dtype=np.int64) * scale
    if half_pixel_centers:
        value = value + scale // 2 - (1 << 9)
    lower = np.maximum(np.trunc(value / 1024).astype(np.int64), 0)  # C division truncates
    upper = np.minimum(np.trunc((value + 1023) / 1024).astype(np.int64), in_size - 1)
    return lower, upper, value - 1024 * lower


def resize_bilinear_int8(x, attrs: ResizeAttrs) -> np.ndarray:
    (_, in_h, in_w, _), (out_h, out_w) = x.shape, attrs.size
    y0, y1, wy = bilinear_taps(in_h, out_h, attrs.align_corners, attrs.half_pixel_centers)
    x0, x1, wx = bilinear_taps(in_w, out_w, attrs.align_corners, attrs.half_pixel_centers)
    v = x[0].astype(np.int64)
    wy, wx = wy[:, None, None], wx[None, :, None]
    total = (v[y0][:, x0] * (1024 - wy) * (1024 - wx) + v[y1][:, x0] * wy * (1024 - wx)
             + v[y0][:, x1] * (1024 - wy) * wx + v[y1][:, x1] * wy * wx)
    rounded = np.where(total > 0, total + (1 << 19), total - (1 << 19))
    out = np.where(rounded < 0, -((-rounded) >> 20), rounded >> 20)  # C division truncates
    return out[np.newaxis].astype(np.int8)


def _resize_float_bilinear(x, attrs: ResizeAttrs) -> np.ndarray:
    """TFLite's float ResizeBilinear (ComputeInterpolationValues in float32)."""
    (_, in_h, in_w, _), (out_h, out_w) = x.shape, attrs.size

    def taps(in_size, out_size):
        scale = np.float32(in_size) / np.float32(out_size)
        if attrs.align_corners and out_size > 1:
            scale = np.float32(in_size - 1) / np.float32(out_size - 1)
        index = np.arange(out_size, dtype=np.float32)
        value = (index + np.float32(0.5)) * scale - np.float32(0.5) if attrs.half_pixel_centers else index * scale
        lower = np.maximum(np.floor(value).astype(np.int64), 0)
        upper = np.minimum(np.ceil(value).astype(np.int64), in_size - 1)
        return lower, upper, (value - lower).astype(np.float32)

    y0, y1, fy = taps(in_h, out_h)
    x0, x1, fx = taps(in_w, out_w)
    v = x[0].astype(np.float32)
    fy, fx = fy[:, None, None], fx[None, :, None]
    out = (v[y0][:, x0] * (1 - fy) * (1 - fx) + v[y1][:, x0] * fy * (1 - fx) + v[y0][:, x1] * (1 - fy) * fx
           + v[y1][:, x1] * fy * fx)
    return out[np.newaxis].astype(np.float32)


def _resize_spec(x, attrs: ResizeAttrs):
    from edgekit.codegen.kernels.resize import ResizeSpec

    if x.shape[0] != 1:
        raise UnsupportedOpError(f"resize of a batch of {x.shape[0]}: edgekit compiles batch 1")
    return ResizeSpec(tuple(int(d) for d in x.shape[1:]), tuple(int(d) for d in attrs.size))


class _Resize(OpDef):
    attrs_type = ResizeAttrs
    same_quant_as_input = True

    def infer_shapes(self, attrs, in_shapes):
        n, _, _, c = in_shapes[0]
        return [(n, int(attrs.size[0]), int(attrs.size[1]), c)]


class ResizeNearest(_Resize):
    name = "resize_nearest"

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """The source rows and columns as int32 tables in flash (see codegen/kernels/resize.py)."""
        from edgekit.codegen.kernels.resize import resize_nearest_kernel
        from edgekit.codegen.layer_calls import ConstArray, kernel_call

        a, x = node.attrs, graph.tensors[node.inputs[0]]
        tables = {axis: ConstArray(f"{prefix}_{axis}", "int32_t", nearest_indices(
            x.shape[dim], a.size[dim - 1], a.align_corners, a.half_pixel_centers).astype(np.int32))
            for axis, dim in (("rows", 1), ("cols", 2))}
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **{axis: const.name for axis, const in tables.items()}}
        return kernel_call(node, resize_nearest_kernel(_resize_spec(x, a)), values, tables.values())

    def _gather(self, attrs, x):
        rows = nearest_indices(x.shape[1], attrs.size[0], attrs.align_corners, attrs.half_pixel_centers)
        cols = nearest_indices(x.shape[2], attrs.size[1], attrs.align_corners, attrs.half_pixel_centers)
        return np.ascontiguousarray(x[:, rows][:, :, cols])

    def run_float(self, attrs, inputs):
        return [self._gather(attrs, inputs[0])]

    def run_int8(self, node, graph, inputs):
        return [self._gather(node.attrs, inputs[0])]


class ResizeBilinear(_Resize):
    name = "resize_bilinear"

    def run_float(self, attrs, inputs):
        return [_resize_float_bilinear(inputs[0], attrs)]

    def run_int8(self, node, graph, inputs):
        return [resize_bilinear_int8(inputs[0], node.attrs)]

    def macs(self, attrs, in_shapes, out_shapes):
        return 4 * int(np.prod(out_shapes[0]))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """The two source indices and the upper weight per output row and column as int32 tables."""
        from edgekit.codegen.kernels.resize import resize_bilinear_kernel
        from edgekit.codegen.layer_calls import ConstArray, kernel_call

        a, x = node.attrs, graph.tensors[node.inputs[0]]
        tables = {}
        for axis, dim in (("row", 1), ("col", 2)):
            taps = bilinear_taps(x.shape[dim], a.size[dim - 1], a.align_corners, a.half_pixel_centers)
            for part, values in zip(("lo", "hi", "frac"), taps):
                tables[f"{axis}_{part}"] = ConstArray(f"{prefix}_{axis}_{part}", "int32_t", values.astype(np.int32))
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **{name: const.name for name, const in tables.items()}}
        return kernel_call(node, resize_bilinear_kernel(_resize_spec(x, a)), values, tables.values())


NEAREST = ResizeNearest()
BILINEAR = ResizeBilinear()
