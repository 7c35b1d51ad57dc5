"""The backbone of a float Graph as a chain of convolutions: what depth compression works on.

Positions 0..L name the tensors between convolutions (0 is the graph input, k the output of
convolution k, after its residual add if one follows). A residual (a, b) adds the tensor at
position a to the output of convolution b. Everything after the last backbone convolution (pooling,
reshape, classifier) is the *head*, kept unchanged. Weights are float64 so merged kernels are exact.
"""

from dataclasses import dataclass, replace

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ir import Graph

CONV_OPS = ("conv2d", "depthwise_conv2d")


def depthwise_to_dense(weight: np.ndarray) -> np.ndarray:
    """[KH, KW, C] depthwise -> [C, KH, KW, C] dense, zero off the channel diagonal."""
    kh, kw, channels = weight.shape
    dense = np.zeros((channels, kh, kw, channels))
    index = np.arange(channels)
    dense[index, :, :, index] = weight.transpose(2, 0, 1)
    return dense


@dataclass
class ConvLayer:
    """One convolution. Dense weight [Cout, KH, KW, Cin]; depthwise weight [KH, KW, C] (multiplier 1)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, left, bottom, right
    activation: str | None
    depthwise: bool
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]

    @property
    def kernel(self) -> tuple[int, int]:
        return (self.weight.shape[0], self.weight.shape[1]) if self.depthwise else self.weight.shape[1:3]

    @property
    def in_channels(self) -> int:
        return self.in_shape[2]

    @property
    def out_channels(self) -> int:
        return self.out_shape[2]

    def dense_weight(self) -> np.ndarray:
        """The weight as a dense [Cout, KH, KW, Cin] kernel (a depthwise one is diagonal in channels)."""
        return depthwise_to_dense(self.weight) if self.depthwise else self.weight

    def macs(self) -> int:
        kh, kw = self.kernel
        per_pixel = kh * kw * (1 if self.depthwise else self.in_channels) * self.out_channels
        return self.out_shape[0] * self.out_shape[1] * per_pixel

    @property
    def droppable(self) -> bool:
        """LayerMerge may replace it by the identity: same shape in and out."""
        return self.in_shape == self.out_shape and self.stride == (1, 1)


@dataclass(frozen=True)
class Residual:
    """The add after convolution ``end`` of the tensor at position ``start``; its fused activation."""

    start: int
    end: int
    activation: str | None


@dataclass
class Chain:
    layers: list[ConvLayer]
    residuals: list[Residual]
    input_shape: tuple[int, int, int]
    head: Graph  # input: the backbone's output tensor (named "backbone"); the rest of the model
    name: str = "model"

    @property
    def length(self) -> int:
        return len(self.layers)

    def residual_ending_at(self, position: int) -> Residual | None:
        return next((r for r in self.residuals if r.end == position), None)

    def shape_at(self, position: int) -> tuple[int, int, int]:
        return self.input_shape if position == 0 else self.layers[position - 1].out_shape

    def copy(self) -> "Chain":
        layers = [replace(layer, weight=layer.weight.copy(), bias=layer.bias.copy()) for layer in self.layers]
        return Chain(layers, list(self.residuals), self.input_shape, self.head.copy(), self.name)


HEAD_INPUT = "backbone"


def extract_chain(graph: Graph) -> Chain:
    """Read the conv/add backbone from the graph input on; the remaining nodes become the head.

    Raises UnsupportedOpError when the model does not start with convolutions or a backbone tensor
    is used outside the backbone (a branch depth compression cannot express).
    """
    current = graph.inputs[0]
    in_shape = graph.tensors[current].shape
    if len(in_shape) != 4:
        raise UnsupportedOpError(f"{graph.name}: input shape {in_shape} is not an image (NHWC); depth compression "
                                 "needs a convolutional network")
    position_of = {current: 0}
    layers: list[ConvLayer] = []
    residuals: list[Residual] = []
    index = 0
    for index, node in enumerate(graph.nodes):
        if node.op in CONV_OPS and node.inputs[0] == current:
            layers.append(_layer_of(graph, node))
        elif node.op == "add" and current in node.inputs and len(layers) > 0:
            skip = node.inputs[1] if node.inputs[0] == current else node.inputs[0]
            if skip not in position_of or skip == current:
                break
            residuals.append(Residual(position_of[skip], len(layers), node.attrs.activation))
        else:
            break
        current = node.output
        position_of[current] = len(layers)
    else:
        index = len(graph.nodes)
    if not layers:
        raise UnsupportedOpError(f"{graph.name}: the first op is {graph.nodes[0].op}, not a convolution; depth "
                                 "compression needs a model that starts with a chain of convolutions")
    backbone = graph.nodes[:index]
    _check_no_escaping_tensors(graph, backbone, current)
    head = _head_graph(graph, graph.nodes[index:], current)
    return Chain(layers, residuals, tuple(in_shape[1:]), head, graph.name)


def _layer_of(graph: Graph, node) -> ConvLayer:
    attrs = node.attrs
    if tuple(attrs.dilation) != (1, 1):
        raise UnsupportedOpError(f"node {node.name}: dilated convolutions cannot be merged; depth compression "
                                 "supports dilation 1 only")
    weight = graph.tensors[node.inputs[1]].data.astype(np.float64)
    depthwise = node.op == "depthwise_conv2d"
    if depthwise and attrs.depth_multiplier != 1:
        raise UnsupportedOpError(f"node {node.name}: depthwise multiplier {attrs.depth_multiplier} is not "
                                 "supported by depth compression (only 1)")
    if depthwise:
        weight = weight[0]
    out_channels = weight.shape[-1] if depthwise else weight.shape[0]
    bias = (graph.tensors[node.inputs[2]].data.astype(np.float64) if len(node.inputs) > 2
            else np.zeros(out_channels))
    return ConvLayer(weight, bias, tuple(attrs.stride), tuple(attrs.padding), attrs.activation, depthwise,
                     tuple(graph.tensors[node.inputs[0]].shape[1:]), tuple(graph.tensors[node.output].shape[1:]))


def _check_no_escaping_tensors(graph: Graph, backbone, output: str) -> None:
    inside = {name for node in backbone for name in node.outputs}
    backbone_names = {node.name for node in backbone}
    for node in graph.nodes:
        if node.name in backbone_names:
            continue
        for name in node.inputs:
            if name in inside and name != output:
                raise UnsupportedOpError(f"node {node.name} ({node.op}) reads backbone tensor {name}; depth "
                                         "compression supports conv chains with residual adds only")
    for name in graph.outputs:
        if name in inside and name != output:
            raise UnsupportedOpError(f"graph output {name} is inside the convolution backbone; depth compression "
                                     "needs a single-output chain")


def _head_graph(graph: Graph, nodes, backbone_output: str) -> Graph:
    """The nodes after the backbone as a graph of their own whose input is named HEAD_INPUT."""
    head = Graph(f"{graph.name}_head")
    rename = {backbone_output: HEAD_INPUT}
    head.add_tensor(replace(graph.tensors[backbone_output], name=HEAD_INPUT))
    head.inputs = [HEAD_INPUT]
    for node in nodes:
        for name in node.inputs + node.outputs:
            if name not in rename and name not in head.tensors:
                head.add_tensor(graph.tensors[name])
        head.nodes.append(replace(node, inputs=[rename.get(n, n) for n in node.inputs],
                                  outputs=[rename.get(n, n) for n in node.outputs]))
    head.outputs = [rename.get(n, n) for n in graph.outputs]
    return head
