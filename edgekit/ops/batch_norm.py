"""batch_norm (inference form): float only; passes.fold_batchnorm removes it before quantization."""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import OpDef


@dataclass
class BatchNormAttrs:
    epsilon: float = 1e-5


class BatchNorm(OpDef):
    name = "batch_norm"
    attrs_type = BatchNormAttrs
    int8_unsupported = ("a batch norm must directly follow a conv2d or depthwise_conv2d without an activation, "
                        "whose output nothing else reads, to fold into it; edgekit cannot quantize a standalone "
                        "batch norm")

    def infer_shapes(self, attrs, in_shapes):
        return [tuple(in_shapes[0])]

    def run_float(self, attrs, inputs):
        x, gamma, beta, mean, var = inputs
        return [((x - mean) / np.sqrt(var + attrs.epsilon) * gamma + beta).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        raise UnsupportedOpError(f"node {node.name} ({self.name}): {self.int8_unsupported}")


OP = BatchNorm()
