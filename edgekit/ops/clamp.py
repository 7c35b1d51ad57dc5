"""clamp: a standalone ReLU/ReLU6 that could not be fused into its producer."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.base import activation_range, apply_activation, quant_of
from edgekit.ops.elementwise import UnaryOp


@dataclass
class ClampAttrs:
    activation: str = "relu"


class Clamp(UnaryOp):
    name = "clamp"
    attrs_type = ClampAttrs
    same_quant_as_input = True

    def run_float(self, attrs, inputs):
        return [apply_activation(inputs[0], attrs.activation).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        clamp = activation_range(node.attrs.activation, quant_of(graph, node.outputs[0]))
        return [np.clip(inputs[0], clamp.act_min, clamp.act_max).astype(np.int8)]


OP = Clamp()
