"""The TVM kernels of the ops beyond the classic CNN set, built with the host gcc and called through
ctypes, are bit-exact with their ops' int8 references: each one-node graph is lowered by its op
definition (the same LayerCall, constants and C arguments the firmware gets) and compared with the
reference interpreter, over random quantization parameters, broadcast shapes and attributes."""

import zlib

import numpy as np
import pytest
from test_kernels_host import _call, _compile, cross_compile_for_cortex_m7

from edgekit.errors import UnsupportedOpError
from edgekit.ir.graph import Graph, Node
from edgekit.ir.interpreter import run_graph
from edgekit.ir.tensor import QuantParams, Tensor
from edgekit.ops import get_op
from edgekit.ops.clamp import ClampAttrs
from edgekit.ops.concat import ConcatAttrs
from edgekit.ops.elementwise import ElementwiseAttrs
from edgekit.ops.leaky_relu import LeakyReluAttrs
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.quantize import NoAttrs
from edgekit.ops.resize import ResizeAttrs
from edgekit.ops.strided_slice import StridedSliceAttrs

C_TYPES = {"int8_t": np.int8, "int32_t": np.int32}


def _quant(rng, scale_range=(0.005, 0.2)):
    return QuantParams.per_tensor(float(np.exp(rng.uniform(*np.log(scale_range)))), int(rng.integers(-100, 100)))


def _graph(op, attrs, input_shapes, out_quant, rng, constant=(), in_quants=None):
    """A one-node int8 graph; inputs listed in ``constant`` (positions) are random int8 constants."""
    graph = Graph(name=op)
    names = []
    for k, shape in enumerate(input_shapes):
        quant = in_quants[k] if in_quants else _quant(rng)
        data = rng.integers(-128, 128, size=shape, dtype=np.int8) if k in constant else None
        graph.add_tensor(Tensor(f"x{k}", shape, "int8", data, quant))
        names.append(f"x{k}")
    out_shapes = get_op(op).infer_shapes(attrs, list(input_shapes))
    graph.add_tensor(Tensor("y", out_shapes[0], "int8", quant=out_quant))
    graph.nodes.append(Node("node", op, names, ["y"], attrs))
    graph.inputs = [n for k, n in enumerate(names) if k not in constant]
    graph.outputs = ["y"]
    graph.lint()
    return graph


def _kernel_output(graph, feeds, tmp_path):
    """Run the node's LayerCall: pointers by tensor name, constants from the call, scalars as given."""
    node = graph.nodes[0]
    buffers = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
    buffers["y"] = np.zeros(graph.tensors["y"].shape, np.int8)
    call = get_op(node.op).lower(node, graph, "n", lambda name: f"&{name}")
    constants = {c.name: np.ascontiguousarray(c.values, dtype=C_TYPES[c.ctype]) for c in call.constants}
    args = [buffers[a[1:]] if a.startswith("&") else constants[a] if a in constants else int(a) for a in call.args]
    _call(_compile(call.kernel, tmp_path), *args)
    return buffers["y"], call


def _check(graph, tmp_path, rng):
    feeds = {name: rng.integers(-128, 128, size=graph.tensors[name].shape, dtype=np.int8) for name in graph.inputs}
    got, call = _kernel_output(graph, feeds, tmp_path)
    want = run_graph(graph, [feeds[n] for n in graph.inputs])["y"]
    np.testing.assert_array_equal(got, want)
    assert want.size < 8 or len(np.unique(want)) > 2, "degenerate case: the output is (nearly) constant"
    return call


BINARY_CASES = [  # (op, a shape, b shape, constant positions, activation)
    ("mul", (1, 5, 6, 8), (1, 5, 6, 8), (), None),
    ("mul", (1, 5, 6, 8), (8,), (1,), "relu"),  # per-channel constant, as in squeeze-and-excite
    ("mul", (1, 5, 6, 8), (1, 1, 1, 8), (), "relu6"),
    ("mul", (1, 4, 3), (), (1,), None),  # a scalar
    ("sub", (1, 5, 1, 8), (1, 5, 6, 8), (), None),
    ("sub", (1, 5, 6, 8), (1, 5, 6, 8), (), "relu"),
    ("squared_difference", (1, 5, 6, 8), (1, 1, 6, 1), (), None),
    ("maximum", (1, 5, 6, 8), (1, 5, 6, 8), (), None),
    ("minimum", (1, 5, 6, 8), (8,), (1,), None),
    ("prelu", (1, 5, 6, 8), (1, 1, 8), (1,), None),
]


@pytest.mark.parametrize("case", BINARY_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[4]}")
def test_broadcast_binary_kernel_matches_reference(case, tmp_path):
    op, a_shape, b_shape, constant, activation = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    attrs = get_op(op).attrs_type()
    if activation:
        attrs = ElementwiseAttrs(activation)
    in_quants = None
    out_quant = _quant(rng, (0.01, 0.5) if op in ("mul", "squared_difference") else (0.005, 0.2))
    if op in ("maximum", "minimum"):  # TFLite's converter gives all three the same parameters
        in_quants = [out_quant, out_quant]
    graph = _graph(op, attrs, [a_shape, b_shape], out_quant, rng, constant, in_quants)
    call = _check(graph, tmp_path, rng)
    assert len(call.constants) == len(constant)


UNARY_CASES = [  # (op, attrs, input scale range, output scale as a factor of the input scale)
    ("logistic", NoAttrs(), (0.01, 0.1), None),
    ("logistic", NoAttrs(), (0.1, 0.5), None),  # most inputs beyond the saturation radius
    ("tanh", NoAttrs(), (0.01, 0.05), None),
    ("hard_swish", NoAttrs(), (0.02, 0.1), 0.7),
    ("hard_swish", NoAttrs(), (0.001, 0.01), 0.05),  # the relu-ish multiplier shifts left
    ("leaky_relu", LeakyReluAttrs(0.1), (0.01, 0.1), 1.3),
    ("leaky_relu", LeakyReluAttrs(-0.3), (0.01, 0.1), 0.8),
    ("leaky_relu", LeakyReluAttrs(0.0), (0.01, 0.1), 0.5),  # a requantizing RELU
    ("clamp", ClampAttrs("relu6"), (0.01, 0.05), 1.0),
]


@pytest.mark.parametrize("case", UNARY_CASES, ids=lambda c: f"{c[0]}-{c[2][0]}-{c[3]}")
def test_lookup_table_kernel_matches_reference(case, tmp_path):
    op, attrs, scale_range, out_factor = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    q_in = _quant(rng, scale_range)
    fixed = get_op(op).fixed_output_quant
    out_quant = QuantParams.per_tensor(*fixed) if fixed else QuantParams.per_tensor(
        q_in.scalar_scale * out_factor, int(rng.integers(-50, 50)))
    if get_op(op).same_quant_as_input:
        out_quant = q_in
    graph = _graph(op, attrs, [(1, 7, 9, 4)], out_quant, rng, in_quants=[q_in])
    call = _check(graph, tmp_path, rng)
    assert [c.values.size for c in call.constants] == [256]


RESIZE_CASES = [  # (op, input HWC, output HW, align_corners, half_pixel_centers)
    ("resize_nearest", (4, 5, 3), (8, 10), False, False),
    ("resize_nearest", (4, 5, 3), (9, 7), False, True),
    ("resize_nearest", (6, 5, 2), (4, 11), True, False),
    ("resize_bilinear", (4, 5, 3), (8, 10), False, False),
    ("resize_bilinear", (4, 5, 3), (9, 7), False, True),
    ("resize_bilinear", (6, 5, 2), (4, 11), True, False),
]


@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "-".join(map(str, c)))
def test_resize_kernel_matches_reference(case, tmp_path):
    op, in_shape, size, align, half = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    q = _quant(rng)
    graph = _graph(op, ResizeAttrs(size, align, half), [(1, *in_shape)], q, rng, in_quants=[q])
    _check(graph, tmp_path, rng)


def test_strided_slice_kernel_matches_reference(tmp_path):
    rng = np.random.default_rng(11)
    q = _quant(rng)
    attrs = StridedSliceAttrs(((0, 1, 1), (1, 8, 2), (7, -1, -3), (2, 3, 1)), squeeze=(3,))
    _check(_graph("strided_slice", attrs, [(1, 9, 8, 5)], q, rng, in_quants=[q]), tmp_path, rng)


@pytest.mark.parametrize("axis", [3, 1, -2])
def test_concat_kernel_matches_reference(axis, tmp_path):
    rng = np.random.default_rng(axis + 20)
    q = _quant(rng)
    shapes = [(1, 4, 5, 3), (1, 4, 5, 3), (1, 4, 5, 3)]
    axis_index = axis % 4
    for k, extra in enumerate((1, 3, 2)):
        shape = list(shapes[k])
        shape[axis_index] = extra
        shapes[k] = tuple(shape)
    _check(_graph("concat", ConcatAttrs(axis), shapes, q, rng, in_quants=[q, q, q]), tmp_path, rng)


def test_concat_refuses_inputs_quantized_unlike_its_output():
    rng = np.random.default_rng(3)
    q = _quant(rng)
    graph = _graph("concat", ConcatAttrs(3), [(1, 2, 2, 3), (1, 2, 2, 3)], q, rng, in_quants=[q, _quant(rng)])
    with pytest.raises(UnsupportedOpError, match="quantized differently from the output"):
        get_op("concat").lower(graph.nodes[0], graph, "n", lambda name: name)


def test_new_kernels_cross_compile_for_cortex_m7(tmp_path):
    rng = np.random.default_rng(5)
    graphs = [_graph(op, ElementwiseAttrs(), [(1, 3, 4, 8), (1, 1, 1, 8)], _quant(rng), rng)
              for op in ("mul", "sub", "squared_difference", "prelu")]
    q = _quant(rng)
    graphs += [_graph(op, NoAttrs(), [(1, 3, 4, 8)], QuantParams.per_tensor(1 / 256, -128), rng) for op in ("logistic",)]
    graphs += [_graph(op, ResizeAttrs((5, 7)), [(1, 3, 4, 8)], q, rng, in_quants=[q])
               for op in ("resize_nearest", "resize_bilinear")]
    makers = [lambda g=g: get_op(g.nodes[0].op).lower(g.nodes[0], g, "n", lambda name: name).kernel for g in graphs]
    cross_compile_for_cortex_m7(makers, tmp_path)


@pytest.mark.parametrize("shape, axes, keep_dims", [
    ((1, 6, 7, 5), (1, 2), True), ((1, 6, 7, 5), (2,), False), ((1, 6, 7, 5), (3,), True),
    ((1, 6, 7, 5), (1, 2, 3), False), ((1, 9, 4), (1,), True)])
def test_mean_kernel_over_any_axes_matches_reference(shape, axes, keep_dims, tmp_path):
    rng = np.random.default_rng(sum(shape) + len(axes))
    q_in = _quant(rng)
    q_out = QuantParams.per_tensor(q_in.scalar_scale / 16, int(rng.integers(-20, 20)))  # means of noise are small
    graph = _graph("mean", MeanAttrs(axes, keep_dims), [shape], q_out, rng, in_quants=[q_in])
    _check(graph, tmp_path, rng)
