"""leaky_relu: x for x >= 0, alpha * x below.

int8 follows TFLite's QuantizeLeakyRelu: x - zp_in is rescaled by s_in / s_out where it is
non-negative and by s_in * alpha / s_out (float32 products, as TFLite Micro forms them) where it is
negative; a negative alpha is applied as the negated product of its magnitude.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import quant_of
from edgekit.ops.elementwise import UnaryOp, widened
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass
class LeakyReluAttrs:
    alpha: float = 0.2


@dataclass(frozen=True)
class LeakyReluInt8Params:
    input_zero_point: int
    output_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int  # of |alpha|; ``alpha_negative`` flips the result
    alpha_shift: int
    alpha_negative: bool


def leaky_relu_int8_params(node, graph) -> LeakyReluInt8Params:
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.outputs[0])
    s_in, s_out = np.float32(q_in.scalar_scale), np.float32(q_out.scalar_scale)
    alpha = np.float32(node.attrs.alpha)
    alpha_multiplier, alpha_shift = quantize_multiplier(abs(float(s_in * alpha / s_out)))
    identity_multiplier, identity_shift = quantize_multiplier(float(s_in / s_out))
    return LeakyReluInt8Params(q_in.scalar_zero_point, q_out.scalar_zero_point, identity_multiplier, identity_shift,
                               alpha_multiplier, alpha_shift, bool(alpha < 0))


def leaky_relu_int8(x, p: LeakyReluInt8Params) -> np.ndarray:
    centred = widened(x) - p.input_zero_point
    identity = multiply_by_quantized_multiplier(centred, p.identity_multiplier, p.identity_shift)
    scaled_alpha = multiply_by_quantized_multiplier(centred, p.alpha_multiplier, p.alpha_shift)
    negative = -scaled_alpha if p.alpha_negative else scaled_alpha
    out = p.output_zero_point + np.where(centred >= 0, identity, negative)
    return np.clip(out, -128, 127).astype(np.int8)


class LeakyRelu(UnaryOp):
    name = "leaky_relu"
    attrs_type = LeakyReluAttrs

    def run_float(self, attrs, inputs):
        x = inputs[0].astype(np.float32)
        return [np.where(x > 0, x, x * np.float32(attrs.alpha)).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [leaky_relu_int8(inputs[0], leaky_relu_int8_params(node, graph))]


OP = LeakyRelu()
