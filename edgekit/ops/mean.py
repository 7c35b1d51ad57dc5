"""mean over any axes (global average pooling over the spatial axes (1, 2) is the common case),
keeping the reduced axes as 1 or dropping them.

int8 follows TFLite's reference_ops::QuantizedMeanOrSum (what BUILTIN_REF and TFLite Micro run for
int8 MEAN, for any axes, with or without keep_dims): sum (x - zp_in) over the reduced elements, then
one fixed-point rescale by input_scale / output_scale with 1/count folded into the Q31 multiplier,
add zp_out.
"""

from dataclasses import asdict, dataclass, replace

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.base import OpDef, quant_of


@dataclass
class MeanAttrs:
    axes: tuple[int, ...] = (1, 2)
    keep_dims: bool = True


@dataclass(frozen=True)
class MeanInt8Params:
    """The integers an int8 spatial mean needs; ``multiplier``/``shift`` quantize input_scale / output_scale.
    The mean kernel's C scalars, in this order (with 1/(H*W) folded into ``multiplier``/``shift``)."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def mean_int8_params(node, graph) -> MeanInt8Params:
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.outputs[0])
    multiplier, shift = quantize_multiplier(np.float64(q_in.scalar_scale) / np.float64(q_out.scalar_scale))
    return MeanInt8Params(int(q_in.scalar_zero_point), int(q_out.scalar_zero_point), multiplier, shift)


def fold_count(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """Fold 1/count into (multiplier, shift) as TFLite's QuantizedMeanOrSum does, truncating."""
    count_shift = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << count_shift) // count, shift - count_shift


def reduced_count(shape, axes) -> int:
    """How many input elements each output averages."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def sum_int8(x, *, input_zero_point, output_zero_point, multiplier, shift, axes=(1, 2), keep_dims=True):
    """sum(x - zp_in) over ``axes``, rescaled by ``multiplier``/``shift`` (with any 1/count already folded in)."""
    acc = (x.astype(np.int64) - input_zero_point).sum(axis=tuple(axes), keepdims=keep_dims)
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_zero_point
    return np.clip(out, -128, 127).astype(np.int8)


def constraint_axes_of_the_input(attrs, in_shapes) -> tuple[bool, str]:
    """The reduction must be over one or more distinct axes of the input (any axes; axes counted from 0)."""
    rank = len(in_shapes[0])
    ok = len(attrs.axes) > 0 and len(set(attrs.axes)) == len(attrs.axes) and all(0 <= a < rank for a in attrs.axes)
    return ok, f"axes {attrs.axes} of a {rank}-D tensor"


class Reduction(OpDef):
    """An op that reduces ``attrs.axes`` of its input (mean, reduce_max), keeping them as 1 or not."""

    attrs_type = MeanAttrs
    constraints = (constraint_axes_of_the_input,)

    def infer_shapes(self, attrs, in_shapes):
        x = in_shapes[0]
        if attrs.keep_dims:
            return [tuple(1 if a in attrs.axes else d for a, d in enumerate(x))]
        return [tuple(d for a, d in enumerate(x) if a not in attrs.axes)]


class QuantizedMeanOrSum(Reduction):
    """mean and sum: TFLite's QuantizedMeanOrSum, one int32 sum per output and one rescale; a mean folds
    1/count into the multiplier (``divides_by_count``), a sum does not. Both run the mean kernel."""

    divides_by_count = True

    def _rescale(self, node, graph) -> MeanInt8Params:
        p = mean_int8_params(node, graph)
        if not self.divides_by_count:
            return p
        count = reduced_count(graph.tensors[node.inputs[0]].shape, node.attrs.axes)
        multiplier, shift = fold_count(p.multiplier, p.shift, count)
        return replace(p, multiplier=multiplier, shift=shift)

    def run_int8(self, node, graph, inputs):
        return [sum_int8(inputs[0], **asdict(self._rescale(node, graph)), axes=node.attrs.axes,
                         keep_dims=node.attrs.keep_dims)]

    def macs(self, attrs, in_shapes, out_shapes):
        return int(np.prod(in_shapes[0]))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.mean import MeanSpec, mean_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **asdict(self._rescale(node, graph))}
        spec = MeanSpec(tuple(int(d) for d in x.shape), tuple(sorted(node.attrs.axes)))
        return kernel_call(node, mean_kernel(spec), values)


class Mean(QuantizedMeanOrSum):
    name = "mean"

    def run_float(self, attrs, inputs):
        return [inputs[0].mean(axis=tuple(attrs.axes), keepdims=attrs.keep_dims).astype(np.float32)]


OP = Mean()
