"""What every op definition provides, and helpers shared by op families.

An op is one object (``OpDef`` subclass instance) registered by name. The interpreter, the quantizer,
the planner and the code generator all read the same definition, so an op's semantics live in one
place: its float reference, its exact int8 reference (TFLite arithmetic) and its int8 parameters.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.quantize.fixedpoint import round_half_away

ACTIVATIONS = (None, "relu", "relu6")


class OpDef:
    """Base class of op definitions; subclasses set ``name`` and ``attrs_type``."""

    name: str = ""
    attrs_type: type | None = None
    #: int8 inputs that must share the output's quantization (pass-through ops like reshape)
    same_quant_as_input: bool = False

    def infer_shapes(self, attrs, in_shapes: list[tuple]) -> list[tuple]:
        raise NotImplementedError

    def run_float(self, attrs, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def run_int8(self, node, graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def macs(self, attrs, in_shapes: list[tuple], out_shapes: list[tuple]) -> int:
        """Multiply-accumulates of one inference (0 for data movement ops)."""
        return 0


@dataclass(frozen=True)
class Int8Clamp:
    """The output clamp of a fused activation, in the output's integer domain."""

    act_min: int
    act_max: int


def activation_range(activation: str | None, quant) -> Int8Clamp:
    """TFLite's CalculateActivationRangeQuantized for int8 outputs (it divides in float32)."""
    scale = np.float32(quant.scalar_scale)
    zero_point = quant.scalar_zero_point

    def quantize(value: float) -> int:
        return zero_point + int(round_half_away(np.float32(value) / scale))

    if activation is None:
        return Int8Clamp(-128, 127)
    if activation == "relu":
        return Int8Clamp(max(-128, quantize(0.0)), 127)
    if activation == "relu6":
        return Int8Clamp(max(-128, quantize(0.0)), min(127, quantize(6.0)))
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def apply_activation(x: np.ndarray, activation: str | None) -> np.ndarray:
    if activation is None:
        return x
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def quant_of(graph, tensor_name: str):
    """The quantization parameters of a tensor, or a clear error if it has none."""
    quant = graph.tensors[tensor_name].quant
    if quant is None:
        raise ValueError(f"tensor {tensor_name} has no quantization parameters; quantize the graph first")
    return quant
