"""softmax over the last axis.

int8 follows TFLite's integer softmax (reference_ops::Softmax, what the BUILTIN_REF resolver and
TFLite Micro run): input differences from the row maximum are rescaled into Q5.26, exponentiated
with gemmlowp's fixed-point exp, summed in Q12.19, and multiplied by the sum's fixed-point
reciprocal. The output quantization is fixed by TFLite at scale 1/256, zero point -128.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.fixedpoint import (exp_on_negative_values, get_reciprocal, multiply_by_quantized_multiplier,
                                quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
                                saturating_rounding_multiply_by_pot)
from edgekit.ops.base import OpDef, quant_of

SCALED_DIFF_INTEGER_BITS = 5  # exp() input format Q5.26
ACCUMULATION_INTEGER_BITS = 12  # sum of exps format Q12.19
OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128


@dataclass
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass(frozen=True)
class SoftmaxInt8Params:
    """The integers an int8 softmax kernel needs (TFLite's SoftmaxParams for int8); its C scalars, in order."""

    input_multiplier: int  # Q31 multiplier of beta * input_scale * 2**26, with...
    input_left_shift: int  # ...this left shift (both from PreprocessSoftmaxScaling)
    diff_min: int  # differences from the row max below this give exactly -128


def softmax_int8_params(node, graph) -> SoftmaxInt8Params:
    q_out = quant_of(graph, node.outputs[0])
    if q_out.scalar_zero_point != OUTPUT_ZERO_POINT or abs(q_out.scalar_scale - OUTPUT_SCALE) > 0.001 * OUTPUT_SCALE:
        raise UnsupportedOpError(
            f"node {node.name}: int8 softmax output has scale {q_out.scalar_scale} and zero point "
            f"{q_out.scalar_zero_point}; TFLite's integer softmax needs scale 1/256 and zero point -128"
        )
    input_scale = np.float64(quant_of(graph, node.inputs[0]).scalar_scale)
    real = min(node.attrs.beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift)
    return SoftmaxInt8Params(multiplier, left_shift, -math.floor(radius))


def softmax_int8(x, *, input_multiplier, input_left_shift, diff_min):
    """TFLite reference_ops::Softmax for int8 input and output, over the last axis."""
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    in_range = diff >= diff_min
    scaled_diff = multiply_by_quantized_multiplier(np.where(in_range, diff, 0), input_multiplier, input_left_shift)
    exp_q0 = exp_on_negative_values(scaled_diff, SCALED_DIFF_INTEGER_BITS)
    exp_accum = saturating_rounding_multiply_by_pot(exp_q0, -ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.where(in_range, exp_accum, 0).sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0), exponent)
    out = np.clip(unsat + OUTPUT_ZERO_POINT, -128, 127)
    return np.where(in_range, out, -128).astype(np.int8)


class Softmax(OpDef):
    name = "softmax"
    attrs_type = SoftmaxAttrs
    fixed_output_quant = (OUTPUT_SCALE, OUTPUT_ZERO_POINT)

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        x = inputs[0].astype(np.float64) * attrs.beta
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [softmax_int8(inputs[0], **softmax_int8_params(node, graph).__dict__)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """Over the last axis: every other axis is a row."""
        from edgekit.codegen.kernels.softmax import SoftmaxSpec, softmax_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        depth = x.shape[-1]
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  **asdict(softmax_int8_params(node, graph))}
        return kernel_call(node, softmax_kernel(SoftmaxSpec(x.size // depth, depth)), values)


OP = Softmax()
