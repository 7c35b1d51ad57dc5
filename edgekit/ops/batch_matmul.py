"""batch_matmul: out[..., i, j] = sum_k lhs[..., i, k] * rhs[..., k, j], batch axes broadcast
NumPy-style, ``adj_x``/``adj_y`` transposing the last two axes of lhs/rhs first (attention, audio
feature mixing). Either operand may be a constant.

int8 follows TFLite Micro's BATCH_MATMUL: (lhs - zp_lhs) * (rhs - zp_rhs) summed in int32, one
rescale by s_lhs * s_rhs / s_out (double, then QuantizeMultiplier), plus zp_out, clamped to int8
(the op has no fused activation).
"""

from dataclasses import asdict, dataclass

import numpy as np

from edgekit.fixedpoint import quantize_multiplier, requantize
from edgekit.ops.base import OpDef, quant_of


@dataclass
class BatchMatmulAttrs:
    adj_x: bool = False
    adj_y: bool = False


@dataclass(frozen=True)
class BatchMatmulInt8Params:
    lhs_offset: int
    rhs_offset: int
    output_offset: int
    output_mult: int
    output_shift: int


def batch_matmul_int8_params(node, graph) -> BatchMatmulInt8Params:
    ql, qr, qo = (quant_of(graph, n) for n in (node.inputs[0], node.inputs[1], node.output))
    mult, shift = quantize_multiplier(np.float64(ql.scalar_scale) * np.float64(qr.scalar_scale)
                                      / np.float64(qo.scalar_scale))
    return BatchMatmulInt8Params(-ql.scalar_zero_point, -qr.scalar_zero_point, qo.scalar_zero_point, mult, shift)


def _matrices(attrs, shapes):
    """(lhs rows, depth), (depth, rhs cols) after the adjoints, and the broadcast batch shape."""
    lhs, rhs = (tuple(s) for s in shapes)
    lhs_m = lhs[-2:][::-1] if attrs.adj_x else lhs[-2:]
    rhs_m = rhs[-2:][::-1] if attrs.adj_y else rhs[-2:]
    return lhs_m, rhs_m, np.broadcast_shapes(lhs[:-2], rhs[:-2])


def constraint_matrices_multiply(attrs, in_shapes) -> tuple[bool, str]:
    """Both operands have at least 2 axes, the depths (lhs columns, rhs rows, after the adjoints)
    agree, and the batch axes broadcast."""
    if len(in_shapes[0]) < 2 or len(in_shapes[1]) < 2:
        return False, f"shapes {tuple(in_shapes[0])} and {tuple(in_shapes[1])}"
    try:
        lhs_m, rhs_m, _ = _matrices(attrs, in_shapes[:2])
    except ValueError:
        return False, f"batch axes of {tuple(in_shapes[0])} and {tuple(in_shapes[1])}"
    return lhs_m[1] == rhs_m[0], f"depths {lhs_m[1]} and {rhs_m[0]}"


def _product(attrs, lhs, rhs):
    if attrs.adj_x:
        lhs = np.swapaxes(lhs, -1, -2)
    if attrs.adj_y:
        rhs = np.swapaxes(rhs, -1, -2)
    return np.matmul(lhs, rhs)


class BatchMatmul(OpDef):
    name = "batch_matmul"
    attrs_type = BatchMatmulAttrs
    constraints = (constraint_matrices_multiply,)

    def infer_shapes(self, attrs, in_shapes):
        lhs_m, rhs_m, batch = _matrices(attrs, in_shapes[:2])
        return [tuple(int(d) for d in batch) + (lhs_m[0], rhs_m[1])]

    def run_float(self, attrs, inputs):
        return [_product(attrs, *(np.asarray(x, np.float64) for x in inputs[:2])).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        p = batch_matmul_int8_params(node, graph)
        acc = _product(node.attrs, inputs[0].astype(np.int64) + p.lhs_offset, inputs[1].astype(np.int64) + p.rhs_offset)
        return [requantize(acc, p.output_mult, p.output_shift, p.output_offset)]

    def macs(self, attrs, in_shapes, out_shapes):
        lhs_m, _, _ = _matrices(attrs, in_shapes[:2])
        return int(np.prod(out_shapes[0])) * lhs_m[1]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.batch_matmul import BatchMatmulSpec, batch_matmul_kernel
        from edgekit.codegen.layer_calls import kernel_call
        from edgekit.ops.elementwise import operand

        lhs, rhs, out = (graph.tensors[n] for n in (node.inputs[0], node.inputs[1], node.output))
        spec = BatchMatmulSpec.of(lhs.shape, rhs.shape, out.shape, node.attrs.adj_x, node.attrs.adj_y)
        lhs_expr, lhs_constants = operand(graph, node.inputs[0], prefix, 0, pointer)
        rhs_expr, rhs_constants = operand(graph, node.inputs[1], prefix, 1, pointer)
        values = {"lhs": lhs_expr, "rhs": rhs_expr, "output": pointer(node.output),
                  **asdict(batch_matmul_int8_params(node, graph))}
        return kernel_call(node, batch_matmul_kernel(spec), values, lhs_constants + rhs_constants)


OP = BatchMatmul()
