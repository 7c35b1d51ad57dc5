"""The reference interpreter: runs any Graph in float or in exact int8 arithmetic.

It is the golden model. In ``int8`` mode every op runs its TFLite-exact integer reference, and the
firmware must reproduce those bytes. In ``float`` mode quantized constants are dequantized first,
so a float graph, a quantized graph and an imported int8 ``.tflite`` graph all run in float too,
which is what per-layer error reports compare against.
"""

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.ops import get_op

MODES = ("float", "int8")


def _constant_value(tensor, mode: str) -> np.ndarray:
    if mode == "float" and tensor.dtype != "float32" and tensor.quant is not None:
        return tensor.quant.dequantize(tensor.data)
    return tensor.data


def _check_input(graph, name: str, value: np.ndarray, mode: str) -> np.ndarray:
    tensor = graph.tensors[name]
    value = np.asarray(value)
    if value.shape != tensor.shape:
        if value.size != tensor.size:
            raise EdgekitError(f"input {name!r} has shape {value.shape}, the model expects {tensor.shape}")
        value = value.reshape(tensor.shape)
    if mode == "int8" and tensor.dtype in ("int8", "uint8") and value.dtype != np.dtype(tensor.dtype):
        raise EdgekitError(f"input {name!r} must be {tensor.dtype} for an integer run, got {value.dtype}; "
                           "quantize it with the input's scale and zero point first")
    return value.astype(np.float32) if mode == "float" else value


def run_graph(graph, inputs, mode: str = "int8", keep_all: bool = False, progress=None) -> dict:
    """Run ``graph`` on ``inputs`` (a list in graph.inputs order, or a dict by name).

    Returns the graph outputs by name, or every tensor by name when ``keep_all`` is set.
    ``progress`` is called once per node (for progress bars on big models).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(inputs, dict):
        inputs = dict(zip(graph.inputs, inputs))
    values = {name: _constant_value(t, mode) for name, t in graph.tensors.items() if t.is_constant}
    for name in graph.inputs:
        if name not in inputs:
            raise EdgekitError(f"missing input {name!r}; the model's inputs are {graph.inputs}")
        values[name] = _check_input(graph, name, inputs[name], mode)
    for node in graph.nodes:
        op = get_op(node.op, node)
        args = [values[name] for name in node.inputs]
        results = op.run_float(node.attrs, args) if mode == "float" else op.run_int8(node, graph, args)
        for name, result in zip(node.outputs, results):
            values[name] = result
        if not keep_all:
            _forget_dead(graph, node, values)
        if progress is not None:
            progress()
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}


def _forget_dead(graph, node, values) -> None:
    """Drop activations whose last consumer has run, so big models do not hold every tensor."""
    index = graph.nodes.index(node)
    later = {n for other in graph.nodes[index + 1:] for n in other.inputs} | set(graph.outputs)
    for name in node.inputs:
        if name not in later and not graph.tensors[name].is_constant:
            values.pop(name, None)
