"""l2_normalization: every vector along the last axis divided by its L2 norm (embeddings, metric
learning heads).

int8 follows TFLite Micro's L2_NORMALIZATION: per row the int32 sum of (x - zp)^2, its inverse
square root as a quantized multiplier (``fixedpoint.inv_sqrt_multiplier``: five Newton steps in
fixed point), then each (x - zp) rescaled by it with 7 more bits of left shift and clamped: the
output has TFLite's fixed quantization, scale 1/128 and zero point 0.
"""

import numpy as np

from edgekit.fixedpoint import inv_sqrt_multiplier, multiply_by_quantized_multiplier
from edgekit.ops.base import OpDef, quant_of
from edgekit.ops.quantize import NoAttrs

OUTPUT_SCALE_BITS = 7
EPSILON = 1e-6  # TFLite's float kernel: x / sqrt(max(sum of squares, epsilon))


def l2_normalization_int8(x: np.ndarray, input_zero_point: int) -> np.ndarray:
    centred = x.astype(np.int64) - input_zero_point
    multiplier, shift = inv_sqrt_multiplier((centred * centred).sum(axis=-1, keepdims=True))
    scaled = multiply_by_quantized_multiplier(centred, multiplier, shift + OUTPUT_SCALE_BITS)
    return np.clip(scaled, -128, 127).astype(np.int8)


class L2Normalization(OpDef):
    name = "l2_normalization"
    attrs_type = NoAttrs
    fixed_output_quant = (1 / 128, 0)

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        x = inputs[0].astype(np.float64)
        return [(x / np.sqrt(np.maximum((x * x).sum(axis=-1, keepdims=True), EPSILON))).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [l2_normalization_int8(inputs[0], quant_of(graph, node.inputs[0]).scalar_zero_point)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        """Over the last axis: every other axis is a row."""
        from edgekit.codegen.kernels.l2_normalization import L2NormalizationSpec, l2_normalization_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        depth = x.shape[-1]
        values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
                  "input_offset": -quant_of(graph, node.inputs[0]).scalar_zero_point}
        return kernel_call(node, l2_normalization_kernel(L2NormalizationSpec(x.size // depth, depth)), values)


OP = L2Normalization()
