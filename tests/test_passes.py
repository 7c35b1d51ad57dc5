"""The float passes, as before/expected graph pairs.

Each test builds a tiny graph with edgekit.ir, runs one pass, lints the result, and checks three
things: the rewritten structure equals a hand-written expected graph, the pass's ``changed`` flag,
and that the float outputs before and after agree on random inputs. Every guard of a pass has a
``keep_`` test that pins the graph it must leave alone. Expected folded weights are worked out here
from the batch-norm formula, not read back from the pass.
"""

import numpy as np
import pytest

from edgekit.errors import GraphError
from edgekit.ir import Graph, Node, Tensor
from edgekit.ir.interpreter import run_graph
from edgekit.ops import get_op
from edgekit.ops.add import AddAttrs
from edgekit.ops.batch_norm import BatchNormAttrs
from edgekit.ops.clamp import ClampAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.pad import PadAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.transpose import TransposeAttrs
from edgekit.passes import FLOAT_PIPELINE, INT8_PIPELINE, run_pipeline
from edgekit.passes.absorb_input_transpose import absorb_input_transpose
from edgekit.passes.convert_mean_to_avg_pool import convert_mean_to_avg_pool
from edgekit.passes.fold_batchnorm import fold_batchnorm
from edgekit.passes.fold_pad import fold_pad
from edgekit.passes.fuse_activation import fuse_activation
from edgekit.passes.remove_identities import remove_identities

EPS = 1e-3
RANDOM_INPUTS = 3


# -- building graphs ---------------------------------------------------------------------------------

class Builder:
    """Adds tensors and nodes to a Graph, inferring output shapes from the op definitions."""

    def __init__(self, seed: int = 0):
        self.graph = Graph(name="test")
        self.rng = np.random.default_rng(seed)

    def input(self, name, shape):
        self.graph.add_tensor(Tensor(name, shape))
        self.graph.inputs.append(name)
        return name

    def const(self, name, data):
        data = np.asarray(data, dtype=np.float32)
        self.graph.add_tensor(Tensor(name, data.shape, "float32", data))
        return name

    def random_const(self, name, shape, low=-1.0, high=1.0):
        return self.const(name, self.rng.uniform(low, high, size=shape))

    def node(self, name, op, inputs, attrs, out=None):
        out = out or f"{name}_out"
        (shape,) = get_op(op).infer_shapes(attrs, [self.graph.tensors[n].shape for n in inputs])
        self.graph.add_tensor(Tensor(out, shape))
        self.graph.nodes.append(Node(name, op, list(inputs), [out], attrs))
        return out

    def batch_norm(self, name, x, channels):
        gamma = self.random_const(f"{name}_gamma", (channels,), 0.5, 1.5)
        beta = self.random_const(f"{name}_beta", (channels,), -0.5, 0.5)
        mean = self.random_const(f"{name}_mean", (channels,), -0.5, 0.5)
        var = self.random_const(f"{name}_var", (channels,), 0.5, 2.0)
        return self.node(name, "batch_norm", [x, gamma, beta, mean, var], BatchNormAttrs(EPS))

    def outputs(self, *names):
        self.graph.outputs = list(names)
        self.graph.lint()
        return self.graph


def structure(graph):
    """What a rewrite may change: inputs, outputs and each node's op, wiring and attributes."""
    return (graph.inputs, graph.outputs,
            [(n.name, n.op, n.inputs, n.outputs, n.attrs) for n in graph.nodes])


def random_inputs(graph, count=RANDOM_INPUTS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(graph.tensors[name].shape).astype(np.float32) for name in graph.inputs]
            for _ in range(count)]


def float_outputs(graph, inputs):
    results = run_graph(graph, inputs, mode="float")
    return [results[name] for name in graph.outputs]


def assert_same_function(before, after, atol=1e-5):
    """The two graphs compute the same outputs (by position) on random inputs, in float."""
    for inputs in random_inputs(before):
        for a, b in zip(float_outputs(before, inputs), float_outputs(after, inputs), strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=atol, rtol=1e-5)


def run_pass(rewrite, graph):
    """Run one pass on a copy, lint the result, return (before, after, changed)."""
    before = graph.copy()
    after, changed = rewrite(graph)
    after.lint()
    return before, after, changed


def assert_kept(rewrite, graph):
    before, after, changed = run_pass(rewrite, graph)
    assert not changed
    assert structure(after) == structure(before)
    for name, tensor in before.tensors.items():
        assert name in after.tensors
        if tensor.is_constant:
            np.testing.assert_array_equal(after.tensors[name].data, tensor.data)
    assert_same_function(before, after, atol=0)


def bn_factor(graph, bn_name):
    """gamma / sqrt(var + eps) and the folded bias shift, straight from the batch-norm formula."""
    t = graph.tensors
    gamma, beta, mean, var = (t[f"{bn_name}_{k}"].data.astype(np.float64) for k in ("gamma", "beta", "mean", "var"))
    factor = gamma / np.sqrt(var + EPS)
    return factor, beta, mean


# -- fold_batchnorm ----------------------------------------------------------------------------------

def test_fold_batchnorm_into_conv_with_bias():
    """conv(x; w, b) -> batch_norm  =>  conv(x; w * f, (b - mean) * f + beta), f = gamma/sqrt(var+eps) per channel."""
    b = Builder()
    x = b.input("x", (1, 6, 6, 3))
    w = b.random_const("w", (4, 3, 3, 3))
    bias = b.random_const("b", (4,))
    c = b.node("conv", "conv2d", [x, w, bias], Conv2dAttrs(padding=(1, 1, 1, 1)))
    y = b.batch_norm("bn", c, 4)
    graph = b.outputs(y)
    factor, beta, mean = bn_factor(graph, "bn")
    expected_w = graph.tensors["w"].data * factor.reshape(4, 1, 1, 1)
    expected_b = (graph.tensors["b"].data - mean) * factor + beta

    before, after, changed = run_pass(fold_batchnorm, graph)

    assert changed
    assert [n.op for n in after.nodes] == ["conv2d"]
    conv = after.nodes[0]
    assert after.outputs == [conv.output]
    assert conv.inputs[0] == "x" and len(conv.inputs) == 3
    np.testing.assert_allclose(after.tensors[conv.inputs[1]].data, expected_w, rtol=1e-6)
    np.testing.assert_allclose(after.tensors[conv.inputs[2]].data, expected_b, rtol=1e-5, atol=1e-6)
    assert not any(name.startswith("bn_") for name in after.tensors), "batch-norm constants left behind"
    assert_same_function(before, after)


def test_fold_batchnorm_into_conv_without_bias_creates_one():
    """A conv with no bias gets bias = beta - mean * g/sqrt(v+eps)."""
    b = Builder(1)
    x = b.input("x", (1, 5, 5, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (3, 1, 1, 2))], Conv2dAttrs())
    graph = b.outputs(b.batch_norm("bn", c, 3))
    factor, beta, mean = bn_factor(graph, "bn")

    before, after, changed = run_pass(fold_batchnorm, graph)

    assert changed
    (conv,) = after.nodes
    np.testing.assert_allclose(after.tensors[conv.inputs[2]].data, beta - mean * factor, rtol=1e-5, atol=1e-6)
    assert_same_function(before, after)


def test_fold_batchnorm_into_depthwise_scales_the_last_filter_axis():
    """Depthwise filters are [1, KH, KW, C]: the per-channel factor multiplies axis 3, not axis 0."""
    b = Builder(2)
    x = b.input("x", (1, 6, 6, 4))
    w = b.random_const("w", (1, 3, 3, 4))
    c = b.node("dw", "depthwise_conv2d", [x, w, b.random_const("b", (4,))],
               DepthwiseConv2dAttrs(stride=(2, 2), padding=(1, 1, 1, 1)))
    graph = b.outputs(b.batch_norm("bn", c, 4))
    factor, _, _ = bn_factor(graph, "bn")
    expected_w = graph.tensors["w"].data * factor.reshape(1, 1, 1, 4)

    before, after, changed = run_pass(fold_batchnorm, graph)

    assert changed
    (dw,) = after.nodes
    np.testing.assert_allclose(after.tensors[dw.inputs[1]].data, expected_w, rtol=1e-6)
    assert_same_function(before, after)


def test_fold_batchnorm_then_its_readers_read_the_conv():
    """Nodes after the batch norm read the folded conv's output instead."""
    b = Builder(3)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    n = b.batch_norm("bn", c, 2)
    y = b.node("relu", "clamp", [n], ClampAttrs("relu"))
    graph = b.outputs(y)

    before, after, changed = run_pass(fold_batchnorm, graph)

    assert changed
    assert [n.op for n in after.nodes] == ["conv2d", "clamp"]
    assert after.nodes[1].inputs == [after.nodes[0].output]
    assert after.outputs == ["relu_out"]
    assert_same_function(before, after)


def test_fold_batchnorm_does_not_change_a_weight_shared_with_another_conv():
    """Folding must not rescale a filter that another conv also reads (tied weights)."""
    b = Builder(4)
    x = b.input("x", (1, 4, 4, 2))
    w = b.random_const("w", (2, 1, 1, 2))
    c1 = b.node("conv1", "conv2d", [x, w], Conv2dAttrs())
    c2 = b.node("conv2", "conv2d", [x, w], Conv2dAttrs())
    graph = b.outputs(b.batch_norm("bn", c1, 2), c2)

    before, after, _ = run_pass(fold_batchnorm, graph)

    assert_same_function(before, after)


def test_keep_batchnorm_when_the_conv_has_another_reader():
    """BN not folded into a conv whose output another node also reads (both values are needed)."""
    b = Builder(5)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    n = b.batch_norm("bn", c, 2)
    graph = b.outputs(b.node("add", "add", [c, n], AddAttrs()))
    assert_kept(fold_batchnorm, graph)


def test_keep_batchnorm_when_the_conv_output_is_a_graph_output():
    """BN not folded into a conv whose output is itself a graph output."""
    b = Builder(6)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    graph = b.outputs(c, b.batch_norm("bn", c, 2))
    assert_kept(fold_batchnorm, graph)


def test_keep_batchnorm_after_a_conv_with_an_activation():
    """BN not folded into a conv that already applies ReLU: bn(relu(conv)) is not a conv."""
    b = Builder(7)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs(activation="relu"))
    graph = b.outputs(b.batch_norm("bn", c, 2))
    assert_kept(fold_batchnorm, graph)


@pytest.mark.parametrize("producer", ["input", "add", "fully_connected"])
def test_keep_batchnorm_without_a_conv_producer(producer):
    """BN after anything but conv2d/depthwise_conv2d (a graph input, an add, a dense layer) stays."""
    b = Builder(8)
    if producer == "fully_connected":
        x = b.input("x", (1, 3))
        src = b.node("fc", "fully_connected", [x, b.random_const("w", (4, 3))], FullyConnectedAttrs())
        channels = 4
    else:
        x = b.input("x", (1, 3, 3, 4))
        src = x if producer == "input" else b.node("add", "add", [x, x], AddAttrs())
        channels = 4
    graph = b.outputs(b.batch_norm("bn", src, channels))
    assert_kept(fold_batchnorm, graph)


# -- fuse_activation ---------------------------------------------------------------------------------

def _fusable_producer(b, op, x):
    if op == "conv2d":
        return b.node("p", op, [x, b.random_const("w", (4, 3, 3, 4)), b.random_const("b", (4,))],
                      Conv2dAttrs(padding=(1, 1, 1, 1)))
    if op == "depthwise_conv2d":
        return b.node("p", op, [x, b.random_const("w", (1, 3, 3, 4))], DepthwiseConv2dAttrs(padding=(1, 1, 1, 1)))
    if op == "add":
        return b.node("p", op, [x, b.node("q", "transpose", [x], TransposeAttrs((0, 2, 1, 3)))], AddAttrs())
    if op in ("avg_pool2d", "max_pool2d"):
        return b.node("p", op, [x], Pool2dAttrs())
    raise ValueError(op)


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d"])
def test_fuse_activation_into_producer(op, activation):
    """op -> clamp(relu|relu6)  =>  op with attrs.activation set, the clamp gone."""
    b = Builder(10)
    if op == "fully_connected":
        x = b.input("x", (1, 6))
        p = b.node("p", op, [x, b.random_const("w", (5, 6), -2, 2), b.random_const("b", (5,), -3, 3)],
                   FullyConnectedAttrs())
    else:
        x = b.input("x", (1, 4, 4, 4))
        # scaled up so that some values pass 6 and relu6 differs from relu
        p = _fusable_producer(b, op, b.node("scale", "add", [x, x], AddAttrs()))
    graph = b.outputs(b.node("act", "clamp", [p], ClampAttrs(activation)))

    before, after, changed = run_pass(fuse_activation, graph)

    assert changed
    assert "clamp" not in [n.op for n in after.nodes]
    producer = after.node("p")
    assert producer.attrs.activation == activation
    assert after.outputs == [producer.output]
    assert_same_function(before, after)


def test_fuse_activation_keeps_the_readers_of_the_clamp():
    """Nodes that read the clamp's output read the fused producer's output afterwards."""
    b = Builder(11)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    r = b.node("relu", "clamp", [c], ClampAttrs("relu6"))
    graph = b.outputs(b.node("pool", "max_pool2d", [r], Pool2dAttrs()))

    before, after, changed = run_pass(fuse_activation, graph)

    assert changed
    assert [(n.op, n.inputs) for n in after.nodes] == [("conv2d", ["x", "w"]), ("max_pool2d", ["conv_out"])]
    assert_same_function(before, after)


def test_keep_activation_when_the_producer_output_has_another_reader():
    """A clamp is not fused when another node also reads the unclamped value."""
    b = Builder(12)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    r = b.node("relu", "clamp", [c], ClampAttrs("relu"))
    graph = b.outputs(b.node("add", "add", [c, r], AddAttrs()))
    assert_kept(fuse_activation, graph)


def test_keep_activation_when_the_producer_output_is_a_graph_output():
    """A clamp is not fused when the unclamped value is itself a graph output."""
    b = Builder(13)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs())
    graph = b.outputs(c, b.node("relu", "clamp", [c], ClampAttrs("relu")))
    assert_kept(fuse_activation, graph)


def test_keep_activation_when_the_producer_already_has_one():
    """relu after a conv that already applies relu6 stays a separate clamp (one activation per op)."""
    b = Builder(14)
    x = b.input("x", (1, 4, 4, 2))
    c = b.node("conv", "conv2d", [x, b.random_const("w", (2, 1, 1, 2))], Conv2dAttrs(activation="relu6"))
    graph = b.outputs(b.node("relu", "clamp", [c], ClampAttrs("relu")))
    assert_kept(fuse_activation, graph)


@pytest.mark.parametrize("op", ["input", "reshape", "transpose", "pad", "clamp"])
def test_keep_activation_after_an_op_without_a_fused_activation(op):
    """A clamp after a graph input or a data-movement op (reshape, transpose, pad, clamp) stays standalone."""
    b = Builder(15)
    x = b.input("x", (1, 2, 2, 3))
    attrs = {"reshape": ReshapeAttrs((1, 12)), "transpose": TransposeAttrs((0, 2, 1, 3)),
             "pad": PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0))), "clamp": ClampAttrs("relu6")}
    src = x if op == "input" else b.node("p", op, [x], attrs[op])
    graph = b.outputs(b.node("act", "clamp", [src], ClampAttrs("relu")))
    assert_kept(fuse_activation, graph)


# -- remove_identities -------------------------------------------------------------------------------

IDENTITY_NODES = {
    "reshape": ("reshape", ReshapeAttrs((1, 3, 4, 2))),
    "transpose": ("transpose", TransposeAttrs((0, 1, 2, 3))),
    "pad": ("pad", PadAttrs(((0, 0), (0, 0), (0, 0), (0, 0)))),
}


@pytest.mark.parametrize("kind", sorted(IDENTITY_NODES))
def test_remove_identity_between_two_ops(kind):
    """reshape to the same shape / transpose by (0, 1, 2, 3) / pad by zeros  =>  removed, readers rewired."""
    op, attrs = IDENTITY_NODES[kind]
    b = Builder(20)
    x = b.input("x", (1, 3, 4, 2))
    a = b.node("first", "add", [x, x], AddAttrs())
    i = b.node("identity", op, [a], attrs)
    graph = b.outputs(b.node("last", "clamp", [i], ClampAttrs("relu")))

    before, after, changed = run_pass(remove_identities, graph)

    assert changed
    assert [(n.name, n.inputs) for n in after.nodes] == [("first", ["x", "x"]), ("last", ["first_out"])]
    assert "identity_out" not in after.tensors
    assert_same_function(before, after, atol=0)


@pytest.mark.parametrize("kind", sorted(IDENTITY_NODES))
def test_remove_identity_that_produces_the_graph_output(kind):
    """An identity at the end of the graph goes, and the graph output becomes its input."""
    op, attrs = IDENTITY_NODES[kind]
    b = Builder(21)
    x = b.input("x", (1, 3, 4, 2))
    a = b.node("first", "add", [x, x], AddAttrs())
    graph = b.outputs(b.node("identity", op, [a], attrs))

    before, after, changed = run_pass(remove_identities, graph)

    assert changed
    assert [n.name for n in after.nodes] == ["first"]
    assert after.outputs == ["first_out"]
    assert_same_function(before, after, atol=0)


def test_remove_identity_that_reads_the_graph_input():
    """An identity right after the graph input goes; its reader reads the input."""
    b = Builder(22)
    x = b.input("x", (1, 3, 4, 2))
    i = b.node("identity", "transpose", [x], TransposeAttrs((0, 1, 2, 3)))
    graph = b.outputs(b.node("last", "clamp", [i], ClampAttrs("relu")))

    before, after, changed = run_pass(remove_identities, graph)

    assert changed
    assert [(n.name, n.inputs) for n in after.nodes] == [("last", ["x"])]
    assert_same_function(before, after, atol=0)


def test_remove_a_chain_of_identities():
    """Consecutive identities all go in one run of the pass."""
    b = Builder(23)
    x = b.input("x", (1, 3, 4, 2))
    a = b.node("first", "add", [x, x], AddAttrs())
    i1 = b.node("id1", "pad", [a], PadAttrs(((0, 0),) * 4))
    i2 = b.node("id2", "reshape", [i1], ReshapeAttrs((1, 3, 4, 2)))
    graph = b.outputs(b.node("id3", "transpose", [i2], TransposeAttrs((0, 1, 2, 3))))

    before, after, changed = run_pass(remove_identities, graph)

    assert changed
    assert [n.name for n in after.nodes] == ["first"] and after.outputs == ["first_out"]
    assert_same_function(before, after, atol=0)


@pytest.mark.parametrize("kind", sorted(IDENTITY_NODES))
def test_keep_identity_that_is_the_whole_graph(kind):
    """An identity from the graph input to the graph output stays: the graph would lose its only node."""
    op, attrs = IDENTITY_NODES[kind]
    b = Builder(24)
    x = b.input("x", (1, 3, 4, 2))
    graph = b.outputs(b.node("identity", op, [x], attrs))
    assert_kept(remove_identities, graph)


@pytest.mark.parametrize("op, attrs", [
    ("reshape", ReshapeAttrs((1, 4, 3, 2))),  # same elements, other shape
    ("reshape", ReshapeAttrs((1, 24))),
    ("transpose", TransposeAttrs((0, 2, 1, 3))),
    ("pad", PadAttrs(((0, 0), (0, 1), (0, 0), (0, 0)))),
], ids=["reshape-swap", "reshape-flatten", "transpose", "pad"])
def test_keep_node_that_changes_its_input(op, attrs):
    """A reshape to another shape, a real transpose or a non-zero pad is not an identity."""
    b = Builder(25)
    x = b.input("x", (1, 3, 4, 2))
    a = b.node("first", "add", [x, x], AddAttrs())
    graph = b.outputs(b.node("node", op, [a], attrs))
    assert_kept(remove_identities, graph)


# -- convert_mean_to_avg_pool ------------------------------------------------------------------------

def test_convert_mean_keep_dims_to_avg_pool_over_the_plane():
    """mean over H, W keeping [1, 1, 1, C]  =>  avg_pool2d with kernel = stride = (H, W), no padding."""
    b = Builder(30)
    x = b.input("x", (1, 5, 3, 4))
    graph = b.outputs(b.node("gap", "mean", [x], MeanAttrs((1, 2), True)))

    before, after, changed = run_pass(convert_mean_to_avg_pool, graph)

    assert changed
    assert structure(after) == (["x"], ["gap_out"], [
        ("gap", "avg_pool2d", ["x"], ["gap_out"], Pool2dAttrs(kernel=(5, 3), stride=(5, 3), padding=(0, 0, 0, 0)))])
    assert_same_function(before, after)


def test_convert_mean_without_keep_dims_adds_a_reshape():
    """mean over H, W to [1, C]  =>  avg_pool2d to [1, 1, 1, C], then reshape to [1, C]."""
    b = Builder(31)
    x = b.input("x", (1, 4, 6, 3))
    m = b.node("gap", "mean", [x], MeanAttrs((1, 2), False))
    graph = b.outputs(b.node("fc", "fully_connected", [m, b.random_const("w", (2, 3))], FullyConnectedAttrs()))

    before, after, changed = run_pass(convert_mean_to_avg_pool, graph)

    assert changed
    pool, reshape, fc = after.nodes
    assert (pool.op, pool.inputs, pool.attrs) == ("avg_pool2d", ["x"], Pool2dAttrs((4, 6), (4, 6), (0, 0, 0, 0)))
    assert after.tensors[pool.output].shape == (1, 1, 1, 3)
    assert (reshape.op, reshape.inputs, reshape.outputs) == ("reshape", [pool.output], ["gap_out"])
    assert reshape.attrs == ReshapeAttrs((1, 3))
    assert fc.inputs[0] == "gap_out"
    assert_same_function(before, after)


def test_keep_graph_without_mean():
    """A graph with no mean is left alone."""
    b = Builder(32)
    x = b.input("x", (1, 4, 4, 2))
    graph = b.outputs(b.node("pool", "avg_pool2d", [x], Pool2dAttrs()))
    assert_kept(convert_mean_to_avg_pool, graph)


# -- the pipeline ------------------------------------------------------------------------------------

def _imported_style_graph():
    """What an ONNX import looks like: NCHW->NHWC no-op, conv, BN, ReLU6, global mean, dense layer."""
    b = Builder(40)
    x = b.input("x", (1, 6, 6, 3))
    t = b.node("to_nhwc", "transpose", [x], TransposeAttrs((0, 1, 2, 3)))
    c = b.node("conv", "conv2d", [t, b.random_const("w", (8, 3, 3, 3))], Conv2dAttrs((2, 2), padding=(1, 1, 1, 1)))
    n = b.batch_norm("bn", c, 8)
    r = b.node("relu6", "clamp", [n], ClampAttrs("relu6"))
    m = b.node("gap", "mean", [r], MeanAttrs((1, 2), False))
    fc = b.node("fc", "fully_connected", [m, b.random_const("fw", (5, 8)), b.random_const("fb", (5,))],
                FullyConnectedAttrs())
    return b.outputs(b.node("relu", "clamp", [fc], ClampAttrs("relu")))


def test_pipeline_canonical_form():
    """The float pipeline turns transpose-conv-bn-relu6-mean-fc-relu into conv(relu6), avg_pool, reshape, fc(relu)."""
    graph = _imported_style_graph()
    before = graph.copy()

    after = run_pipeline(graph)

    assert [(n.op, getattr(n.attrs, "activation", None)) for n in after.nodes] == [
        ("conv2d", "relu6"), ("avg_pool2d", None), ("reshape", None), ("fully_connected", "relu")]
    assert after.nodes[0].inputs[0] == "x"
    assert_same_function(before, after)


def test_pipeline_order():
    """The input layout is settled first; identities go before the folds (so a PAD or BN can reach the
    conv), BN folds before fusion (so ReLU6 meets the conv). int8 graphs get only the exact rewrites."""
    assert FLOAT_PIPELINE == (absorb_input_transpose, remove_identities, fold_pad, fold_batchnorm, fuse_activation,
                              convert_mean_to_avg_pool)
    assert INT8_PIPELINE == (absorb_input_transpose, fold_pad)


def test_pipeline_lints_after_each_pass():
    """A pass that breaks an invariant is caught right after it runs, by Graph.lint."""
    def reverse_nodes(graph):
        graph.nodes.reverse()
        return graph, True

    ran = []

    def later_pass(graph):
        ran.append(True)
        return graph, False

    with pytest.raises(GraphError, match="topological order"):
        run_pipeline(_imported_style_graph(), passes=(reverse_nodes, later_pass))
    assert not ran


def test_passes_are_idempotent():
    """A second run of the pipeline finds nothing more to do."""
    graph = run_pipeline(_imported_style_graph())
    for rewrite in FLOAT_PIPELINE:
        graph, changed = rewrite(graph)
        assert not changed, rewrite.__name__
