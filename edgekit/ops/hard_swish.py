"""hard_swish: x * relu6(x + 3) / 6 (MobileNetV3).

int8 follows TFLite's reference_ops::HardSwish on int16 fixed point: the input, less its zero point,
is lifted by 2**7; one int16 multiplier (rounded down from Q31) brings it to the output scale, a
second rescales it to the "relu-ish" factor in [-1, 1] (3.0 is 32768) with saturating shifts, which
becomes [0, 1]; their product (a non-rounding doubling high multiply, as TFLite chose to cancel the
rounding bias) is shifted to the output scale. Both real multipliers are float32 quotients.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import quant_of
from edgekit.ops.elementwise import UnaryOp, widened
from edgekit.ops.quantize import NoAttrs
from edgekit.fixedpoint import quantize_multiplier, rounding_divide_by_pot

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MAX_MINUS_ROUNDING = (1 << 31) - 1 - (1 << 15)  # Q31 multipliers at or above this round to INT16_MAX


@dataclass(frozen=True)
class HardSwishInt8Params:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int  # int16
    output_exponent: int  # <= 0
    reluish_multiplier: int  # int16
    reluish_exponent: int


def _int16_multiplier(real: np.float32) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier then DownScaleInt32ToInt16Multiplier (round the Q31 value to Q15)."""
    multiplier, exponent = quantize_multiplier(float(real))
    if multiplier >= INT32_MAX_MINUS_ROUNDING:
        return INT16_MAX, exponent
    return (multiplier + (1 << 15)) >> 16, exponent



def hard_swish_int8_params(node, graph) -> HardSwishInt8Params:
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.outputs[0])
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(q_in.scalar_scale)
    output_multiplier, output_exponent = _int16_multiplier(hires_input_scale / np.float32(q_out.scalar_scale))
    if output_exponent > 0:
        raise UnsupportedOpError(f"hard_swish node {node.name}: the output scale is over 1/128 of the input scale "
                                 "(TFLite requires a non-positive output exponent)")
    reluish_multiplier, reluish_exponent = _int16_multiplier(hires_input_scale / np.float32(3.0 / 32768.0))
    return HardSwishInt8Params(q_in.scalar_zero_point, q_out.scalar_zero_point, output_multiplier, output_exponent,
                               reluish_multiplier, reluish_exponent)


def _saturate_int16(x):
    return np.clip(x, INT16_MIN, INT16_MAX)


def _saturating_rounding_doubling_high_mul_int16(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16 (round(a * b / 2**15), saturating MIN*MIN)."""
    product = widened(a) * b
    nudge = np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    total = product + nudge
    high = np.where(total < 0, -((-total) >> 15), total >> 15)  # C division truncates
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high)


def _saturating_doubling_high_mul_int16(a, b):
    """TFLite's SaturatingDoublingHighMul on int16: a * b / 2**15 truncated toward zero, saturating MIN*MIN."""
    product = widened(a) * b
    high = np.where(product < 0, -((-product) >> 15), product >> 15)
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high)


def hard_swish_int8(x, p: HardSwishInt8Params) -> np.ndarray:
    hires = (widened(x) - p.input_zero_point) * (1 << 7)
    preshift_output = _saturating_rounding_doubling_high_mul_int16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:
        reluish = _saturate_int16(reluish * (1 << (p.reluish_exponent - 1)))
    reluish = _saturating_rounding_doubling_high_mul_int16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = _saturate_int16(reluish * 2)
    if p.reluish_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -p.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    out = _saturating_doubling_high_mul_int16(reluish, preshift_output)
    out = rounding_divide_by_pot(out, -p.output_exponent) + p.output_zero_point
    return np.clip(out, -128, 127).astype(np.int8)


class HardSwish(UnaryOp):
    name = "hard_swish"
    attrs_type = NoAttrs

    def run_float(self, attrs, inputs):
        x = inputs[0].astype(np.float32)
        return [(x * np.clip(x + np.float32(3), 0, 6) / np.float32(6)).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [hard_swish_int8(inputs[0], hard_swish_int8_params(node, graph))]


OP = HardSwish()
