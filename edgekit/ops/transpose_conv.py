"""transpose_conv: the gradient of a strided convolution, used to upsample (segmentation decoders,
autoencoders). NHWC input, (O, KH, KW, I) filter, optional int32 bias, fused activation.

Input pixel (iy, ix) scatters its products into output pixel (iy * stride - pad_top + fy,
ix * stride - pad_left + fx) for every filter tap (fy, fx); outputs outside the tensor are dropped.
int8 follows TFLite Micro's reference_integer_ops::TransposeConv: (x + input_offset) * w summed in
int32 per output element, the bias added, then each output channel requantized as a convolution's
(``mac_int8_params``). ``padding`` holds the top and left padding TFLite derives from its padding
type (ComputePaddingHeightWidth on the output size) and ``output_hw`` the output's size.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.conv_params import MacOp, bias_or_zeros, finish_float, finish_int8, mac_int8_params


@dataclass
class TransposeConvAttrs:
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)  # top, left
    output_hw: tuple[int, int] = (1, 1)
    activation: str | None = None


def constraint_filter_matches_the_input(attrs, in_shapes) -> tuple[bool, str]:
    """The filter is (output channels, height, width, input channels) with the input's channels."""
    x, w = in_shapes[0], in_shapes[1]
    return len(x) == 4 and len(w) == 4 and w[3] == x[3], f"input {tuple(x)}, filter {tuple(w)}"


def tap_rows(size: int, stride: int, pad: int, tap: int, out_size: int) -> tuple[int, int]:
    """The input indices [first, last) whose output index i * stride - pad + tap lies in the output."""
    first = max(0, -(-(pad - tap) // stride))
    last = min(size, (out_size - 1 + pad - tap) // stride + 1)
    return first, max(first, last)


def scatter(x: np.ndarray, filt: np.ndarray, stride, padding, output_hw) -> np.ndarray:
    """sum of x[iy, ix, :] . w[:, fy, fx, :] into its output pixel, as float64 [1, OH, OW, O]
    (exact for int8 products: every partial sum stays far below 2**53)."""
    out_c, kh, kw, _ = filt.shape
    acc = np.zeros((output_hw[0], output_hw[1], out_c), np.float64)
    image = x[0].astype(np.float64)
    for fy in range(kh):
        rows = tap_rows(image.shape[0], stride[0], padding[0], fy, output_hw[0])
        for fx in range(kw):
            cols = tap_rows(image.shape[1], stride[1], padding[1], fx, output_hw[1])
            if rows[0] == rows[1] or cols[0] == cols[1]:
                continue
            products = image[rows[0]:rows[1], cols[0]:cols[1]] @ filt[:, fy, fx, :].astype(np.float64).T
            out_rows = slice(rows[0] * stride[0] - padding[0] + fy, None, stride[0])
            out_cols = slice(cols[0] * stride[1] - padding[1] + fx, None, stride[1])
            acc[out_rows, out_cols][:products.shape[0], :products.shape[1]] += products
    return acc[np.newaxis]


class TransposeConv(MacOp):
    name = "transpose_conv"
    attrs_type = TransposeConvAttrs
    weight_channel_axis = 0  # (O, KH, KW, I)
    constraints = (constraint_filter_matches_the_input,)

    def infer_shapes(self, attrs, in_shapes):
        return [(1, *attrs.output_hw, in_shapes[1][0])]

    def run_float(self, attrs, inputs):
        acc = scatter(inputs[0], inputs[1], attrs.stride, attrs.padding, attrs.output_hw)
        return [finish_float(acc, inputs, attrs.activation)]

    def run_int8(self, node, graph, inputs):
        w = inputs[1]
        p = mac_int8_params(node, graph, w.shape[0])
        a = node.attrs
        acc = scatter(inputs[0].astype(np.int64) + p.input_offset, w, a.stride, a.padding, a.output_hw)
        return [finish_int8(acc, bias_or_zeros(graph, node, w.shape[0], np.int32), p.multiplier, p.shift,
                            p.output_offset, p.act_min, p.act_max)]

    def macs(self, attrs, in_shapes, out_shapes):
        out_c, kh, kw, in_c = in_shapes[1]
        return int(np.prod(in_shapes[0][1:3])) * out_c * kh * kw * in_c

    def expected_output_error(self, weight_error, input_mean):
        return np.einsum("ohwi,i->o", weight_error, input_mean)

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.transpose_conv import TransposeConvSpec, transpose_conv_kernel
        from edgekit.codegen.layer_calls import ConstArray, kernel_call

        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        out_channels = w.shape[0]
        a = node.attrs
        spec = TransposeConvSpec(tuple(int(d) for d in x.shape[1:]), tuple(int(d) for d in w.shape),
                                 tuple(a.stride), tuple(a.padding), tuple(a.output_hw))
        p = mac_int8_params(node, graph, out_channels)
        constants = {"filter": ConstArray(f"{prefix}_w", "int8_t", w.data),
                     "bias": ConstArray(f"{prefix}_b", "int32_t", bias_or_zeros(graph, node, out_channels, np.int32)),
                     "multiplier": ConstArray(f"{prefix}_m", "int32_t", p.multiplier),
                     "shift": ConstArray(f"{prefix}_s", "int32_t", p.shift)}
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **{name: const.name for name, const in constants.items()},
                  "input_offset": p.input_offset, "output_offset": p.output_offset,
                  "act_min": p.act_min, "act_max": p.act_max}
        return kernel_call(node, transpose_conv_kernel(spec), values, constants.values())


OP = TransposeConv()
