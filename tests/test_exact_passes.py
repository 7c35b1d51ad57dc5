"""The exact rewrites run on imported int8 graphs: fold_pad (an explicit zero-point PAD folds into the
padding of the convolution that alone reads it) and absorb_input_transpose (a leading NCHW -> NHWC
TRANSPOSE becomes the input layout).

Each rewrite is checked as a before/expected pair and by running both graphs: the int8 outputs are
equal byte for byte. ``keep_`` cases pin what must not change.
"""

import numpy as np
import pytest

from edgekit.ir.interpreter import run_graph
from edgekit.passes import INT8_PIPELINE, run_pipeline
from edgekit.ir import Node, Tensor
from edgekit.ops.transpose import TransposeAttrs
from edgekit.passes.absorb_input_transpose import absorb_input_transpose
from edgekit.passes.fold_pad import fold_pad
from test_memory_patch_stage import Int8Builder


def _copy(graph):
    import copy

    return copy.deepcopy(graph)


def _same_outputs(before, after, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = rng.integers(-128, 128, before.tensors[before.inputs[0]].shape, dtype=np.int8)
        expected, got = run_graph(before, [x]), run_graph(after, [x])
        assert all(np.array_equal(expected[a], got[b]) for a, b in zip(before.outputs, after.outputs))


@pytest.mark.parametrize("reader", ["conv", "depthwise"])
def test_fold_pad_into_the_convolution(reader):
    builder = Int8Builder((9, 11), 4, seed=1)
    padded = builder.pad(builder.graph.inputs[0], 1, 2, 0, 1)  # top, left, bottom, right
    make = builder.conv if reader == "conv" else builder.depthwise
    y = make(padded, 6, kernel=3, stride=2, same=False) if reader == "conv" else make(padded, stride=2, same=False)
    graph = builder.head(y)
    before = _copy(graph)
    after, changed = fold_pad(graph)
    after.lint()
    assert changed and [n.op for n in after.nodes if n.op == "pad"] == []
    folded = after.nodes[0]
    assert folded.inputs[0] == after.inputs[0] and folded.attrs.padding == (1, 2, 0, 1)
    _same_outputs(before, after)


def test_fold_pad_adds_to_existing_padding():
    builder = Int8Builder((8, 8), 3, seed=2)
    padded = builder.pad(builder.graph.inputs[0], 1, 1, 1, 1)
    graph = builder.head(builder.conv(padded, 4, kernel=3, same=True))  # SAME: (1, 1, 1, 1) already
    before = _copy(graph)
    after, _ = fold_pad(graph)
    assert after.nodes[0].attrs.padding == (2, 2, 2, 2)
    _same_outputs(before, after)


def test_keep_pad_with_another_reader():
    builder = Int8Builder((8, 8), 3, seed=3)
    padded = builder.pad(builder.graph.inputs[0], 1, 1, 1, 1)
    a = builder.conv(padded, 4, kernel=3, same=False)
    b = builder.conv(padded, 4, kernel=3, same=False)
    graph = builder.head(builder.add(a, b))
    assert fold_pad(graph) == (graph, False)


def test_keep_pad_before_a_pool():
    """An average pool divides by the count of real pixels, so padded pixels are not the same as padding."""
    builder = Int8Builder((8, 8), 3, seed=4)
    padded = builder.pad(builder.graph.inputs[0], 1, 1, 1, 1)
    graph = builder.head(builder.conv(builder.pool(padded, "avg_pool2d", 3, 1, same=False), 4))
    assert fold_pad(graph) == (graph, False)


def test_keep_channel_pad():
    builder = Int8Builder((8, 8), 3, seed=5)
    x = builder.graph.inputs[0]
    padded = builder.pad(x, 0, 0, 0, 0)
    builder.graph.nodes[-1].attrs.pads = ((0, 0), (0, 0), (0, 0), (0, 1))
    builder.graph.tensors[padded].shape = (1, 8, 8, 4)
    graph = builder.head(builder.conv(padded, 4, kernel=3, same=False))
    assert fold_pad(graph) == (graph, False)


def test_keep_padv2_with_a_nonzero_value():
    """PADV2 pads with a constant other than 0.0: those pixels are not the convolution's zero padding."""
    builder = Int8Builder((8, 8), 3, seed=6)
    padded = builder.pad(builder.graph.inputs[0], 1, 1, 1, 1)
    builder.graph.nodes[-1].attrs.value = 0.5
    graph = builder.head(builder.conv(padded, 4, kernel=3, same=False))
    assert fold_pad(graph) == (graph, False)


@pytest.mark.slow
def test_nchw_mobilenet_v2_loses_its_pads_and_transpose_and_keeps_its_bytes(models_dir, data_dir):
    """The tflite-micro MobileNetV2's 18 explicit PADs fold away and its input transpose becomes the
    input layout; the dog (NCHW bytes, as TFLite Micro's test feeds it) still gives the same bytes."""
    from edgekit.frontend.tflite import import_tflite

    imported = import_tflite(models_dir / "tflite-micro/mobilenet_v2_int8_224_nchw.tflite")
    assert sum(node.op == "pad" for node in imported.nodes) == 18
    folded = run_pipeline(_copy(imported), INT8_PIPELINE)
    assert not any(node.op in ("pad", "transpose") for node in folded.nodes)
    dog = np.load(data_dir / "samples/dog_bytes_as_int8_1x3x224x224.npy").astype(np.int8).reshape(1, 3, 224, 224)
    expected = run_graph(imported, [dog])[imported.outputs[0]]
    got = run_graph(folded, [np.ascontiguousarray(dog.transpose(0, 2, 3, 1))])[folded.outputs[0]]
    assert np.array_equal(expected, got) and int(np.argmax(got)) == 258


def _nchw_graph(perm=(0, 2, 3, 1), second_reader=False):
    """An NCHW input, a transpose to NHWC, a 3x3 conv; optionally a second reader of the input."""
    builder = Int8Builder((5, 7), 3, seed=6)  # its input is replaced by an NCHW one below
    graph = builder.graph
    nhwc = graph.inputs[0]
    quant = graph.tensors[nhwc].quant
    shape = graph.tensors[nhwc].shape
    nchw = tuple(shape[p] for p in np.argsort(perm))  # the tensor that perm turns into ``shape``
    graph.add_tensor(Tensor("nchw", nchw, "int8", quant=quant))
    graph.nodes.append(Node("to_nhwc", "transpose", ["nchw"], [nhwc], TransposeAttrs(tuple(perm))))
    graph.inputs = ["nchw"]
    y = builder.conv(nhwc, 4, kernel=3)
    if second_reader:
        other = builder._node("transpose", ["nchw"], TransposeAttrs(tuple(perm)), shape, same_quant=True)
        y = builder.add(y, builder.conv(other, 4, kernel=1))
    return builder.head(y)


def test_absorb_input_transpose_makes_the_input_nhwc():
    graph = _nchw_graph()
    before = _copy(graph)
    after, changed = absorb_input_transpose(graph)
    after.lint()
    assert changed and after.tensors[after.inputs[0]].shape == (1, 5, 7, 3)
    assert not any(node.op == "transpose" for node in after.nodes)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, 3, 5, 7), dtype=np.int8)
        expected = run_graph(before, [x])[before.outputs[0]]
        got = run_graph(after, [np.ascontiguousarray(x.transpose(0, 2, 3, 1))])[after.outputs[0]]
        assert np.array_equal(expected, got)


def test_keep_transpose_with_another_permutation():
    graph = _nchw_graph(perm=(0, 3, 2, 1))
    assert absorb_input_transpose(graph) == (graph, False)


def test_keep_transpose_when_the_input_has_another_reader():
    graph = _nchw_graph(second_reader=True)
    assert absorb_input_transpose(graph) == (graph, False)
