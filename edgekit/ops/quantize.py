"""quantize (float -> int8, or 8-bit -> 8-bit with new parameters) and dequantize (8-bit -> float).

These sit at the model boundary of float-interface (and uint8-interface) models; 8-bit is int8 or
uint8, each clamped to its own range as TFLite Micro does. Both keep the shape and are the identity
on float values; they differ only in their int8 arithmetic.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from edgekit.ops.base import OpDef, quant_of


@dataclass
class NoAttrs:
    pass


def affine_quantize(x: np.ndarray, scale, zero_point: int, dtype=np.int8) -> np.ndarray:
    """TFLite Micro's AffineQuantize: ``round(x / (float)scale) + zero_point`` clamped to ``dtype``,
    with a float32 division (not float64: the two differ where the quotient lies within a float32
    rounding of a half) and std::round's half away from zero."""
    quotient = np.asarray(x, dtype=np.float32) / np.float32(scale)
    info = np.iinfo(dtype)
    return np.clip(round_half_away(quotient.astype(np.float64)) + zero_point, info.min, info.max).astype(dtype)


class _Conversion(OpDef):
    """A change of representation: same shape, the identity on float values."""

    attrs_type = NoAttrs
    any_dtype = True

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        return [inputs[0]]


def requantize_params(node, graph) -> tuple[int, int, int, int]:
    """TFLite's 8-bit -> 8-bit Requantize: (input zero point, multiplier, shift, output zero point), the
    multiplier from the scale ratio computed in double."""
    q_in, q_out = quant_of(graph, node.inputs[0]), quant_of(graph, node.output)
    mult, shift = quantize_multiplier(np.float64(q_in.scalar_scale) / np.float64(q_out.scalar_scale))
    return q_in.scalar_zero_point, mult, shift, q_out.scalar_zero_point


def c_float(value) -> str:
    """A float32 value as an exact C literal (hexadecimal, so no decimal rounding on the way)."""
    return f"{float(np.float32(value)).hex()}f"


_C_TYPES = {"float32": "float", "uint8": "uint8_t", "int32": "int32_t"}


def typed_pointer(pointer, graph, name: str) -> str:
    """The C pointer of tensor ``name``, cast to ``float *``, ``uint8_t *`` or ``int32_t *`` for those
    dtypes (the arena is int8_t bytes)."""
    ctype = _C_TYPES.get(graph.tensors[name].dtype)
    return f"(({ctype} *){pointer(name)})" if ctype else pointer(name)


class Quantize(_Conversion):
    name = "quantize"

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.quantize import QuantizeSpec, quantize_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.output]
        spec = QuantizeSpec(x.size, x.dtype, y.dtype)
        values = {"input": typed_pointer(pointer, graph, x.name), "output": typed_pointer(pointer, graph, y.name)}
        if x.dtype == "float32":
            values.update(scale=c_float(y.quant.scalar_scale), zero_point=y.quant.scalar_zero_point)
        else:
            zp_in, mult, shift, zp_out = requantize_params(node, graph)
            values.update(input_offset=-zp_in, mult=mult, shift=shift, output_offset=zp_out)
        return kernel_call(node, quantize_kernel(spec), values)

    def run_int8(self, node, graph, inputs):
        q_out = quant_of(graph, node.outputs[0])
        dtype = np.dtype(graph.tensors[node.output].dtype)
        x = inputs[0]
        if x.dtype.kind in "iu":  # TFLite's 8-bit -> 8-bit requantize
            zp_in, mult, shift, zp_out = requantize_params(node, graph)
            y = multiply_by_quantized_multiplier(x.astype(np.int64) - zp_in, mult, shift)
            return [np.clip(y + zp_out, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)]
        return [affine_quantize(x, q_out.scalar_scale, q_out.scalar_zero_point, dtype)]


class Dequantize(_Conversion):
    name = "dequantize"

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.quantize import QuantizeSpec, quantize_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x, q_in = graph.tensors[node.inputs[0]], quant_of(graph, node.inputs[0])
        values = {"input": typed_pointer(pointer, graph, x.name), "output": typed_pointer(pointer, graph, node.output),
                  "scale": c_float(q_in.scalar_scale), "zero_point": q_in.scalar_zero_point}
        return kernel_call(node, quantize_kernel(QuantizeSpec(x.size, x.dtype, "float32")), values)

    def run_int8(self, node, graph, inputs):
        return [quant_of(graph, node.inputs[0]).dequantize(inputs[0])]


QUANTIZE = Quantize()
DEQUANTIZE = Dequantize()
