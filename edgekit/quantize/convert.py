"""Float Graph + calibrated ranges -> int8 Graph following the TFLite int8 spec.

- activations: per-tensor asymmetric int8, range widened to include 0 so that zero (padding, ReLU)
  is exact; ops that move data (``same_quant_as_input``: reshape, pooling, pad, transpose, clamp)
  reuse their input's parameters as TFLite requires; an op with a ``fixed_output_quant`` (softmax's
  (1/256, -128)) gets that.
- weights: symmetric int8 in [-127, 127], per output channel (the op's ``weight_channel_axis``) or
  per tensor, by scheme.
- biases: int32 with scale input_scale * weight_scale and zero point 0.
- constant operands of ops without weights (a mul's scalar or per-channel factor, a prelu slope):
  per-tensor asymmetric int8 over their values and 0, as TFLite's converter quantizes them.
- ops whose int8 inputs must share the output's quantization (``same_quant_inputs``: maximum,
  minimum, concat): the output gets its calibrated range, and every input quantized otherwise is
  requantized first by an int8 -> int8 QUANTIZE node inserted before the op (what TF's converter
  does); a constant operand is quantized with the output's parameters.
Tensor and node names are kept, so the float and int8 graphs can be compared layer by layer.
"""

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.fixedpoint import round_half_away
from edgekit.ir import Node, QuantParams, Tensor
from edgekit.ops import get_op
from edgekit.ops.quantize import NoAttrs

INT32_LIMIT = 2**31 - 1


def activation_params(low: float, high: float) -> QuantParams:
    """Asymmetric int8 parameters covering [low, high] and 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-8:
        high = low + 1e-8
    scale = np.float32((high - low) / 255.0)
    zero_point = int(np.clip(round_half_away(-128.0 - low / float(scale)), -128, 127))
    return QuantParams.per_tensor(scale, zero_point)


def weight_params(weight: np.ndarray, axis: int | None) -> QuantParams:
    if axis is None:
        max_abs = np.array([np.abs(weight).max()])
    else:
        other_axes = tuple(i for i in range(weight.ndim) if i != axis)
        max_abs = np.abs(weight).max(axis=other_axes)
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    return QuantParams(scale, np.zeros_like(scale, dtype=np.int32), axis)


def _quantize_weights(graph, node, axis: int, granularity: str) -> None:
    """int8 weights and int32 bias; the weight scale widens where the bias would overflow int32.

    The bias scale is input_scale * weight_scale, so a tiny input range with tiny weights can push
    b / (s_in * s_w) past int32; TFLite's quantizer then widens s_w until the bias fits, and so do we.
    """
    weight = graph.tensors[node.inputs[1]]
    quant = weight_params(weight.data, axis if granularity == "per_channel" else None)
    in_scale = np.float64(graph.tensors[node.inputs[0]].quant.scalar_scale)
    if len(node.inputs) > 2:
        bias_abs = np.abs(graph.tensors[node.inputs[2]].data.astype(np.float64))
        needed = bias_abs if quant.per_channel else np.array([bias_abs.max(initial=0.0)])
        smallest = (needed / (in_scale * INT32_LIMIT)).astype(np.float32)
        quant = QuantParams(np.maximum(quant.scale, smallest), quant.zero_point, quant.axis)
    if not quant.per_channel:
        quant.axis = None
    q = np.clip(quant.quantize(weight.data), -127, 127).astype(np.int8)
    weight.data, weight.dtype, weight.quant = q, "int8", quant
    if len(node.inputs) > 2:
        bias = graph.tensors[node.inputs[2]]
        bias_scale = (in_scale * quant.scale.astype(np.float64)).astype(np.float32)
        q_bias = round_half_away(bias.data.astype(np.float64) / bias_scale.astype(np.float64))
        bias.data = np.clip(q_bias, -INT32_LIMIT, INT32_LIMIT).astype(np.int32)
        bias.dtype = "int32"
        bias.quant = QuantParams(bias_scale, np.zeros(bias_scale.shape, np.int32), 0 if bias_scale.size > 1 else None)


def _quantize_constant_operands(graph, node) -> None:
    for name in node.inputs:
        tensor = graph.tensors[name]
        if tensor.is_constant and tensor.dtype == "float32":  # a constant shared by two nodes is done once
            tensor.quant = activation_params(float(tensor.data.min()), float(tensor.data.max()))
            tensor.data, tensor.dtype = tensor.quant.quantize(tensor.data), "int8"


def _same_quant(a: QuantParams, b: QuantParams) -> bool:
    return (float(a.scalar_scale), a.scalar_zero_point) == (float(b.scalar_scale), b.scalar_zero_point)


def _requantize_inputs(graph, node) -> list[Node]:
    """Bring every input of ``node`` to its output's quantization: constants directly, activations
    through new int8 -> int8 quantize nodes, which are returned (to run just before ``node``)."""
    target = graph.tensors[node.output].quant
    inserted = []
    for position, name in enumerate(node.inputs):
        tensor = graph.tensors[name]
        if tensor.is_constant and tensor.dtype == "float32":
            tensor.quant = target
            tensor.data, tensor.dtype = target.quantize(tensor.data), "int8"
        elif not _same_quant(tensor.quant, target):
            requantized = graph.add_tensor(Tensor(graph.unique_name(f"{name}@{node.name}"), tensor.shape, "int8",
                                                  quant=target))
            inserted.append(Node(graph.unique_name(f"{node.name}_requantize{position}"), "quantize", [name],
                                 [requantized.name], NoAttrs()))
            node.inputs[position] = requantized.name
    return inserted


def quantize_graph(float_graph, ranges: dict, scheme):
    """The int8 version of ``float_graph`` (a copy); ``ranges`` come from :func:`calibrate`."""
    graph = float_graph.copy()
    for name in graph.inputs:
        graph.tensors[name].quant = activation_params(*ranges[name])
        graph.tensors[name].dtype = "int8"
    nodes = []
    for node in graph.nodes:
        op = get_op(node.op, node)
        if op.int8_unsupported is not None:
            raise UnsupportedOpError(f"node {node.name} ({node.op}): {op.int8_unsupported}")
        out = graph.tensors[node.output]
        if op.same_quant_as_input:
            out.quant = graph.tensors[node.inputs[0]].quant
        elif op.fixed_output_quant is not None:
            out.quant = QuantParams.per_tensor(*op.fixed_output_quant)
        else:
            out.quant = activation_params(*ranges[node.output])
        out.dtype = "int8"
        if op.weight_channel_axis is not None:
            _quantize_weights(graph, node, op.weight_channel_axis, scheme.weight_granularity)
        elif op.same_quant_inputs:
            nodes.extend(_requantize_inputs(graph, node))
        else:
            _quantize_constant_operands(graph, node)
        nodes.append(node)
    graph.nodes = nodes
    graph.lint()
    return graph
