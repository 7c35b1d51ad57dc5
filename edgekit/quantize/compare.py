"""Per-layer error of an int8 graph against its float original: SQNR, cosine and max abs error."""

from dataclasses import dataclass

import numpy as np

from edgekit.ir.interpreter import run_graph


@dataclass
class LayerError:
    node: str
    op: str
    tensor: str
    sqnr_db: float
    cosine: float
    max_abs: float


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    noise = float(np.sum((reference.astype(np.float64) - approx) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 1.0 when both are all zeros, 0.0 when only one is (nothing of it survived)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0.0 or norm_b == 0.0:
        return 1.0 if norm_a == norm_b else 0.0
    return float(a @ b / (norm_a * norm_b))


def compare_layers(float_graph, int8_graph, float_inputs: list[np.ndarray]) -> list[LayerError]:
    """Errors per node output, pooled over all inputs (float inputs; quantized for the int8 run)."""
    pooled: dict[str, list] = {}
    input_quant = int8_graph.tensors[int8_graph.inputs[0]].quant
    for x in float_inputs:
        ref = run_graph(float_graph, [x], mode="float", keep_all=True)
        got = run_graph(int8_graph, [input_quant.quantize(x)], mode="int8", keep_all=True)
        for node in int8_graph.nodes:
            name = node.output
            if name in ref:
                real = int8_graph.tensors[name].quant.dequantize(got[name])
                pooled.setdefault(name, []).append((ref[name].ravel(), real.ravel()))
    errors = []
    for node in int8_graph.nodes:
        pairs = pooled.get(node.output)
        if not pairs:
            continue
        reference = np.concatenate([p[0] for p in pairs])
        approx = np.concatenate([p[1] for p in pairs])
        errors.append(LayerError(node.name, node.op, node.output, sqnr_db(reference, approx),
                                 cosine(reference, approx), float(np.max(np.abs(reference - approx)))))
    return errors
