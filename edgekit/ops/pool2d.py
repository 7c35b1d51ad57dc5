"""avg_pool2d and max_pool2d over spatial windows; padding never counts (TFLite semantics).

int8 pooling keeps the input's quantization (TFLite requires equal input and output parameters),
so no rescaling happens: averages round half away from zero with C integer division.
"""

from dataclasses import dataclass, replace

import numpy as np

from edgekit.ops.base import OpDef, activation_range, apply_activation, quant_of
from edgekit.ops.window import Window, output_hw, pad_hw, windows


@dataclass
class Pool2dAttrs:
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: str | None = None


def _valid_counts(in_hw, attrs, out_hw) -> np.ndarray:
    """Number of in-bounds elements under every output window, shape [OH, OW, 1]."""
    ones = np.ones((1, in_hw[0], in_hw[1], 1), dtype=np.float64)
    win = windows(pad_hw(ones, attrs.padding), attrs.kernel, attrs.stride, (1, 1), out_hw)
    return win.sum(axis=(2, 3))


def _pool_windows(x, attrs, fill):
    out_hw = output_hw(x.shape[1:3], attrs.kernel, attrs.stride, (1, 1), attrs.padding)
    return windows(pad_hw(x, attrs.padding, fill), attrs.kernel, attrs.stride, (1, 1), out_hw), out_hw


def avg_pool2d_int8(x, *, kernel, stride, padding, act_min, act_max):
    attrs = Pool2dAttrs(kernel, stride, padding)
    win, out_hw = _pool_windows(x.astype(np.int64), attrs, 0)
    acc = win.sum(axis=(2, 3))
    count = _valid_counts(x.shape[1:3], attrs, out_hw).astype(np.int64)
    half = count // 2
    magnitude = (np.abs(acc) + half) // count
    avg = np.where(acc > 0, magnitude, -magnitude)
    return np.clip(avg, act_min, act_max).astype(np.int8)[np.newaxis]


def max_pool2d_int8(x, *, kernel, stride, padding, act_min, act_max):
    win, _ = _pool_windows(x.astype(np.int32), Pool2dAttrs(kernel, stride, padding), -(1 << 30))
    return np.clip(win.max(axis=(2, 3)), act_min, act_max).astype(np.int8)[np.newaxis]


def constraint_nhwc_input(attrs, in_shapes) -> tuple[bool, str]:
    """The input is one NHWC tensor."""
    return len(in_shapes) == 1 and len(in_shapes[0]) == 4, f"inputs {[list(s) for s in in_shapes]}"


class _Pool2d(OpDef):
    attrs_type = Pool2dAttrs
    constraints = (constraint_nhwc_input,)
    same_quant_as_input = True
    fuses_activation = True
    patchable = True
    int8_kernel = None

    def infer_shapes(self, attrs, in_shapes):
        x = in_shapes[0]
        oh, ow = output_hw(x[1:3], attrs.kernel, attrs.stride, (1, 1), attrs.padding)
        return [(1, oh, ow, x[3])]

    def run_int8(self, node, graph, inputs):
        a = node.attrs
        clamp = activation_range(a.activation, quant_of(graph, node.outputs[0]))
        return [type(self).int8_kernel(inputs[0], kernel=a.kernel, stride=a.stride, padding=a.padding,
                                       act_min=clamp.act_min, act_max=clamp.act_max)]

    def window(self, node, graph):
        attrs = node.attrs
        return Window(attrs.kernel, attrs.stride, (1, 1), attrs.padding)

    def with_padding(self, attrs, padding):
        return replace(attrs, padding=padding)

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.pool2d import Pool2dSpec
        from edgekit.codegen.layer_calls import kernel_call

        clamp = activation_range(node.attrs.activation, quant_of(graph, node.output))
        spec = Pool2dSpec(tuple(graph.tensors[node.inputs[0]].shape[1:]), self.window(node, graph))
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output), "act_min": clamp.act_min,
                  "act_max": clamp.act_max}
        return kernel_call(node, self.c_kernel(spec), values)

    def c_kernel(self, spec):
        """The TVM kernel of this pooling for ``spec`` (codegen/kernels/pool2d.py)."""
        raise NotImplementedError


class AvgPool2d(_Pool2d):
    name = "avg_pool2d"
    int8_kernel = staticmethod(avg_pool2d_int8)

    def c_kernel(self, spec):
        from edgekit.codegen.kernels.pool2d import avg_pool2d_kernel

        return avg_pool2d_kernel(spec)

    def run_float(self, attrs, inputs):
        x = inputs[0].astype(np.float64)
        win, out_hw = _pool_windows(x, attrs, 0.0)
        avg = win.sum(axis=(2, 3)) / _valid_counts(x.shape[1:3], attrs, out_hw)
        return [apply_activation(avg[np.newaxis], attrs.activation).astype(np.float32)]

    def macs(self, attrs, in_shapes, out_shapes):
        return int(np.prod(out_shapes[0])) * attrs.kernel[0] * attrs.kernel[1]


class MaxPool2d(_Pool2d):
    name = "max_pool2d"
    int8_kernel = staticmethod(max_pool2d_int8)

    def c_kernel(self, spec):
        from edgekit.codegen.kernels.pool2d import max_pool2d_kernel

        return max_pool2d_kernel(spec)

    def run_float(self, attrs, inputs):
        win, _ = _pool_windows(inputs[0].astype(np.float64), attrs, -np.inf)
        return [apply_activation(win.max(axis=(2, 3))[np.newaxis], attrs.activation).astype(np.float32)]


AVG = AvgPool2d()
MAX = MaxPool2d()
