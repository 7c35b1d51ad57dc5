"""quantize (float -> int8, or int8 -> int8 with new parameters) and dequantize (int8 -> float).

These sit at the model boundary of float-interface models. Both keep the shape and are the identity
on float values; they differ only in their int8 arithmetic.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from edgekit.ops.base import OpDef, quant_of


@dataclass
class NoAttrs:
    pass


def affine_quantize(x: np.ndarray, scale, zero_point: int) -> np.ndarray:
    """TFLite Micro's AffineQuantize: ``round(x / (float)scale) + zero_point`` clamped to int8, with a
    float32 division (not float64: the two differ where the quotient lies within a float32 rounding
    of a half) and std::round's half away from zero."""
    quotient = np.asarray(x, dtype=np.float32) / np.float32(scale)
    return np.clip(round_half_away(quotient.astype(np.float64)) + zero_point, -128, 127).astype(np.int8)


class _Conversion(OpDef):
    """A change of representation: same shape, the identity on float values."""

    attrs_type = NoAttrs

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        return [inputs[0]]


def requantize_params(node, graph) -> tuple[int, int, int, int]:
    """TFLite's int8 -> int8 Requantize: (input zero point, multiplier, shift, output zero point), the
    multiplier from the scale ratio computed in double."""
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.output)
    mult, shift = quantize_multiplier(np.float64(q_in.scalar_scale) / np.float64(q_out.scalar_scale))
    return q_in.scalar_zero_point, mult, shift, q_out.scalar_zero_point


def c_float(value) -> str:
    """A float32 value as an exact C literal (hexadecimal, so no decimal rounding on the way)."""
    return f"{float(np.float32(value)).hex()}f"


def float_pointer(pointer, graph, name: str) -> str:
    """The C pointer of tensor ``name``, cast to ``float *`` when the tensor is float32 (the arena is bytes)."""
    return f"((float *){pointer(name)})" if graph.tensors[name].dtype == "float32" else pointer(name)


class Quantize(_Conversion):
    name = "quantize"

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.quantize import QuantizeSpec, quantize_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        values = {"input": float_pointer(pointer, graph, node.inputs[0]), "output": pointer(node.output)}
        if x.dtype == "float32":
            q_out = quant_of(graph, node.output)
            values.update(scale=c_float(q_out.scalar_scale), zero_point=q_out.scalar_zero_point)
            return kernel_call(node, quantize_kernel(QuantizeSpec(x.size, "f32_s8")), values)
        zp_in, mult, shift, zp_out = requantize_params(node, graph)
        values.update(input_offset=-zp_in, mult=mult, shift=shift, output_offset=zp_out)
        return kernel_call(node, quantize_kernel(QuantizeSpec(x.size, "s8_s8")), values)

    def run_int8(self, node, graph, inputs):
        q_out = quant_of(graph, node.outputs[0])
        x = inputs[0]
        if x.dtype == np.int8:  # TFLite's int8 -> int8 requantize
            zp_in, mult, shift, zp_out = requantize_params(node, graph)
            y = multiply_by_quantized_multiplier(x.astype(np.int64) - zp_in, mult, shift)
            return [np.clip(y + zp_out, -128, 127).astype(np.int8)]
        return [affine_quantize(x, q_out.scalar_scale, q_out.scalar_zero_point)]


class Dequantize(_Conversion):
    name = "dequantize"

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.quantize import QuantizeSpec, quantize_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x, q_in = graph.tensors[node.inputs[0]], quant_of(graph, node.inputs[0])
        values = {"input": pointer(node.inputs[0]), "output": float_pointer(pointer, graph, node.output),
                  "scale": c_float(q_in.scalar_scale), "zero_point": q_in.scalar_zero_point}
        return kernel_call(node, quantize_kernel(QuantizeSpec(x.size, "s8_f32")), values)

    def run_int8(self, node, graph, inputs):
        return [quant_of(graph, node.inputs[0]).dequantize(inputs[0])]


QUANTIZE = Quantize()
DEQUANTIZE = Dequantize()
