"""mean over the spatial axes (global average pooling), keeping dims [1, 1, 1, C] or not [1, C].

int8 follows TFLite's reference_ops::QuantizedMeanOrSum (what BUILTIN_REF and TFLite Micro run for
int8 MEAN, with or without keep_dims): sum (x - zp_in) over H*W, then one fixed-point rescale by
input_scale / output_scale with 1/(H*W) folded into the Q31 multiplier, add zp_out.
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


def mean_int8(x, *, input_zero_point, output_zero_point, multiplier, shift, keep_dims):
    """``multiplier``/``shift`` quantize input_scale / output_scale; 1/(H*W) is folded in here."""
    mean_multiplier, mean_shift = fold_count(multiplier, shift, x.shape[1] * x.shape[2])
    acc = (x.astype(np.int64) - input_zero_point).sum(axis=(1, 2))
    out = multiply_by_quantized_multiplier(acc, mean_multiplier, mean_shift) + output_zero_point
    out = np.clip(out, -128, 127).astype(np.int8)
    return out.reshape(1, 1, 1, -1) if keep_dims else out.reshape(1, -1)


def constraint_spatial_axes(attrs, in_shapes) -> tuple[bool, str]:
    """The mean must be over the spatial axes (1, 2) of an NHWC tensor."""
    return (len(in_shapes[0]) == 4 and tuple(sorted(attrs.axes)) == (1, 2),
            f"axes {attrs.axes} of a {len(in_shapes[0])}-D tensor")


class Mean(OpDef):
    name = "mean"
    attrs_type = MeanAttrs
    constraints = (constraint_spatial_axes,)

    def infer_shapes(self, attrs, in_shapes):
        x = in_shapes[0]
        return [(1, 1, 1, x[3]) if attrs.keep_dims else (1, x[3])]

    def run_float(self, attrs, inputs):
        return [inputs[0].mean(axis=(1, 2), keepdims=attrs.keep_dims).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [mean_int8(inputs[0], **mean_int8_params(node, graph).__dict__, keep_dims=node.attrs.keep_dims)]

    def macs(self, attrs, in_shapes, out_shapes):
        return int(np.prod(in_shapes[0]))

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """Spatial mean of an NHWC tensor; 1/(H*W) is folded into the multiplier here, as TFLite does."""
        from edgekit.codegen.kernels.mean import MeanSpec, mean_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        p = mean_int8_params(node, graph)
        multiplier, shift = fold_count(p.multiplier, p.shift, x.shape[1] * x.shape[2])
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **asdict(replace(p, multiplier=multiplier, shift=shift))}
        return kernel_call(node, mean_kernel(MeanSpec(tuple(int(d) for d in x.shape[1:]))), values)


OP = Mean()
