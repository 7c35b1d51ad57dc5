"""Nodes and the Graph that owns them.

A Graph is a list of nodes in topological order plus a table of named tensors. Nodes refer to
tensors by name and to ops by name (``edgekit.ops`` holds one definition per op), so passes can
rewrite the graph without touching op code. ``lint()`` checks the invariants every pass must keep.
"""

import copy
from dataclasses import dataclass, field

from edgekit.errors import GraphError
from edgekit.ir.tensor import Tensor
from edgekit.ops import get_op


@dataclass
class Node:
    """One op application: ``outputs = op(inputs; attrs)``."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: object = None

    @property
    def output(self) -> str:
        """The single output of a single-output node (all edgekit ops have one)."""
        return self.outputs[0]


@dataclass
class Graph:
    """A dataflow graph in NHWC with batch 1; nodes are kept in topological order."""

    name: str = "model"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise GraphError(f"tensor name {tensor.name!r} is used twice; names must be unique")
        self.tensors[tensor.name] = tensor
        return tensor

    def unique_name(self, base: str) -> str:
        """A tensor/node name derived from ``base`` that is not taken yet."""
        taken = set(self.tensors) | {n.name for n in self.nodes}
        if base not in taken:
            return base
        index = 1
        while f"{base}_{index}" in taken:
            index += 1
        return f"{base}_{index}"

    def producer(self, tensor_name: str) -> Node | None:
        for node in self.nodes:
            if tensor_name in node.outputs:
                return node
        return None

    def display_name(self, tensor_name: str) -> str:
        """The name reports and messages give a tensor: the name of the node that writes it (what the
        layer table calls it), or its own for a graph input; one name per tensor across all tables."""
        node = self.producer(tensor_name)
        return node.name if node is not None else tensor_name

    def consumers(self, tensor_name: str) -> list[Node]:
        return [node for node in self.nodes if tensor_name in node.inputs]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: what the memory planner must place."""
        return [t for t in self.tensors.values() if not t.is_constant]

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    def remove_unused_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for node in self.nodes:
            used.update(node.inputs)
            used.update(node.outputs)
        for name in list(self.tensors):
            if name not in used:
                del self.tensors[name]

    def lint(self) -> None:
        """Check topological order, unique names, known ops, the ops' constraints and consistent shapes.

        Raises GraphError (UnsupportedOpError for a broken op constraint) naming the first offending
        node and what to do about it.
        """
        defined = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_constant}
        node_names = set()
        for name in self.inputs + self.outputs:
            if name not in self.tensors:
                raise GraphError(f"graph input/output {name!r} has no tensor; add it to graph.tensors")
        for node in self.nodes:
            if node.name in node_names:
                raise GraphError(f"node name {node.name!r} is used twice; use graph.unique_name()")
            node_names.add(node.name)
            for name in node.inputs:
                if name not in self.tensors:
                    raise GraphError(f"node {node.name}: input {name!r} is not a tensor of the graph")
                if name not in defined:
                    raise GraphError(
                        f"node {node.name}: input {name!r} is used before it is produced; "
                        "keep graph.nodes in topological order"
                    )
            for name in node.outputs:
                if name in defined:
                    raise GraphError(f"node {node.name}: output {name!r} is produced twice")
                if name not in self.tensors:
                    raise GraphError(f"node {node.name}: output {name!r} is not a tensor of the graph")
                defined.add(name)
            op = get_op(node.op, node)
            in_shapes = [self.tensors[n].shape for n in node.inputs]
            op.check(node, in_shapes)
            expected = op.infer_shapes(node.attrs, in_shapes)
            actual = [self.tensors[n].shape for n in node.outputs]
            if list(map(tuple, expected)) != actual:
                raise GraphError(
                    f"node {node.name} ({node.op}): output shape {actual} but the op infers {expected}"
                )
        for name in self.outputs:
            if name not in defined:
                raise GraphError(f"graph output {name!r} is never produced")
