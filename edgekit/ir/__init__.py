"""The graph IR: named tensors in NHWC with batch 1 and static shapes, nodes that reference ops by name."""

from edgekit.ir.graph import Graph, Node
from edgekit.ir.tensor import QuantParams, Tensor

__all__ = ["Graph", "Node", "QuantParams", "Tensor"]
