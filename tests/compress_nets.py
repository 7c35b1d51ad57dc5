"""Tiny networks for the depth-compression tests: random chains built directly (no torch export)."""

import numpy as np

from edgekit.compress.chain import HEAD_INPUT, Chain, ConvLayer, Residual
from edgekit.ir import Graph
from edgekit.ir.graph import Node
from edgekit.ir.tensor import Tensor
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.mean import MeanAttrs


def random_layer(rng, in_shape, out_channels, kernel=1, stride=1, depthwise=False, activation="relu6",
                 padding=None):
    pad = (kernel - 1) // 2 if padding is None else padding
    height = (in_shape[0] + 2 * pad - kernel) // stride + 1
    width = (in_shape[1] + 2 * pad - kernel) // stride + 1
    channels = in_shape[2]
    if depthwise:
        weight = rng.standard_normal((kernel, kernel, channels)) / kernel
        out_channels = channels
    else:
        weight = rng.standard_normal((out_channels, kernel, kernel, channels)) / np.sqrt(kernel * kernel * channels)
    return ConvLayer(weight, rng.standard_normal(out_channels) * 0.1, (stride, stride), (pad,) * 4, activation,
                     depthwise, tuple(in_shape), (height, width, out_channels))


def head_graph(shape, classes):
    head = Graph("head")
    head.add_tensor(Tensor(HEAD_INPUT, (1,) + tuple(shape)))
    head.add_tensor(Tensor("pooled", (1, 1, 1, shape[2])))
    head.add_tensor(Tensor("flat", (1, shape[2])))
    rng = np.random.default_rng(1)
    head.add_tensor(Tensor("fc_w", (classes, shape[2]), data=rng.standard_normal((classes, shape[2])).astype(np.float32)))
    head.add_tensor(Tensor("fc_b", (classes,), data=np.zeros(classes, np.float32)))
    head.add_tensor(Tensor("logits", (1, classes)))
    from edgekit.ops.reshape import ReshapeAttrs

    head.nodes = [Node("mean", "mean", [HEAD_INPUT], ["pooled"], MeanAttrs((1, 2), True)),
                  Node("flat", "reshape", ["pooled"], ["flat"], ReshapeAttrs((1, shape[2]))),
                  Node("fc", "fully_connected", ["flat", "fc_w", "fc_b"], ["logits"], FullyConnectedAttrs())]
    head.inputs, head.outputs = [HEAD_INPUT], ["logits"]
    return head


def inverted_residual_chain(seed=0, size=12, channels=8, blocks=2, classes=5):
    """stem 3x3/2, then ``blocks`` inverted residuals (expand 1x1, dw 3x3, project 1x1, skip), a stride-2
    block without skip, and a 1x1: the shapes of MobileNetV2 at toy size."""
    rng = np.random.default_rng(seed)
    layers, residuals = [], []
    shape = (size, size, 3)

    def push(layer):
        layers.append(layer)
        return layer.out_shape

    shape = push(random_layer(rng, shape, channels, 3, 2))
    for _ in range(blocks):
        start = len(layers)
        shape = push(random_layer(rng, shape, channels * 3))
        shape = push(random_layer(rng, shape, 0, 3, 1, depthwise=True))
        shape = push(random_layer(rng, shape, channels, activation=None))
        residuals.append(Residual(start, len(layers), None))
    shape = push(random_layer(rng, shape, channels * 3))
    shape = push(random_layer(rng, shape, 0, 3, 2, depthwise=True))
    shape = push(random_layer(rng, shape, channels + 4, activation=None))
    shape = push(random_layer(rng, shape, 16, 1))
    return Chain(layers, residuals, (size, size, 3), head_graph(shape, classes), "toy")
