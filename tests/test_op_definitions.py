"""Every registered op definition answers what each stage asks of it, consistently, so that a new op
file that forgets a piece fails here, naming the op and the piece, and not deep inside a compile."""

import dataclasses
import inspect

import numpy as np
import pytest

from edgekit.errors import UnsupportedOpError
from edgekit.ir import Graph, Node, QuantParams, Tensor
from edgekit.memory.buffer_sharing import share_buffers
from edgekit.ops import OPS, get_op
from edgekit.ops.base import OpDef
from edgekit.ops.window import Window

OP_NAMES = sorted(OPS)


def _overrides(op: OpDef, method: str) -> bool:
    return getattr(type(op), method) is not getattr(OpDef, method)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_named_op_class_is_registered():
    """An op file is found by itself (edgekit/ops/__init__.py imports every module); this catches a
    class whose module forgot to create its instance."""
    registered = {type(op) for op in OPS.values()}
    named = {cls for cls in _subclasses(OpDef) if cls.name and cls.__module__.startswith("edgekit.ops.")}
    assert named <= registered, f"op classes without a registered instance: {named - registered}"


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_is_registered_under_its_name_with_dataclass_attrs(name):
    op = OPS[name]
    assert op.name == name
    assert op.attrs_type is not None and dataclasses.is_dataclass(op.attrs_type), \
        f"op {name}: attrs_type must be a dataclass (serialization and the importers build it)"


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_has_shape_inference_and_both_references(name):
    op = OPS[name]
    for method in ("infer_shapes", "run_float", "run_int8"):
        assert _overrides(op, method), f"op {name} does not define {method}"


@pytest.mark.parametrize("name", OP_NAMES)
def test_weights_come_with_bias_correction(name):
    """An op with int8 weights must say how a weight error shifts its outputs (bias correction)."""
    op = OPS[name]
    if op.weight_channel_axis is not None:
        assert _overrides(op, "expected_output_error"), f"op {name} has weights but no expected_output_error"
    else:
        assert not op.folds_batch_norm, f"op {name} folds batch norm but has no weight_channel_axis"


@pytest.mark.parametrize("name", OP_NAMES)
def test_fused_activation_needs_an_activation_attr(name):
    op = OPS[name]
    if op.fuses_activation or op.folds_batch_norm:
        fields = {field.name for field in dataclasses.fields(op.attrs_type)}
        assert "activation" in fields, f"op {name} fuses activations but its attrs have no 'activation'"


@pytest.mark.parametrize("name", OP_NAMES)
def test_output_quantization_is_decided_once(name):
    op = OPS[name]
    assert not (op.same_quant_as_input and op.fixed_output_quant is not None), \
        f"op {name} both keeps its input's quantization and fixes its own"


@pytest.mark.parametrize("name", OP_NAMES)
def test_buffer_share_rule_is_one_the_planner_can_switch(name):
    rule = OPS[name].buffer_share
    if rule is None:
        return
    options = {p for p in inspect.signature(share_buffers).parameters if p.startswith("inplace_")}
    assert rule.option is None or rule.option in options, \
        f"op {name}: buffer_share option {rule.option!r} is not a share_buffers keyword ({sorted(options)})"
    assert rule.reason and callable(rule.sources)
    assert OPS[name].has_kernel, f"op {name} shares buffers but has no lowering to honour it"


@pytest.mark.parametrize("name", OP_NAMES)
def test_a_windowed_patch_op_can_take_patch_padding(name):
    """An op with its own window geometry must also say how to run with a patch's padding, and only
    patchable ops have either."""
    op = OPS[name]
    if _overrides(op, "window") or _overrides(op, "with_padding"):
        assert op.patchable, f"op {name} has window geometry but is not patchable"
        assert _overrides(op, "window") and _overrides(op, "with_padding"), \
            f"op {name} must define both window and with_padding"
    if _overrides(op, "row_wise"):
        assert op.patchable and op.has_kernel, f"op {name} is row-wise but cannot run on patches"


@pytest.mark.parametrize("name", OP_NAMES)
def test_constraints_state_their_rule(name):
    """Every constraint has a docstring (the rule users read in errors and in `edgekit ops`) and is
    named constraint_*, as the patch stage's and Vela's are."""
    op = OPS[name]
    for constraint in op.constraints + op.patch_constraints:
        assert constraint.__name__.startswith("constraint_"), f"op {name}: {constraint.__name__}"
        assert constraint.__doc__ and constraint.__doc__.strip().endswith("."), \
            f"op {name}: {constraint.__name__} needs a docstring that states the rule"


def test_lint_names_the_node_and_the_rule_it_breaks():
    graph = Graph("g")
    for name, shape in (("a", (1, 4, 4, 8)), ("b", (1, 1, 1, 3)), ("y", (1, 4, 4, 8))):
        graph.add_tensor(Tensor(name, shape, "float32"))
    graph.nodes = [Node("sum3", "add", ["a", "b"], ["y"], get_op("add").attrs_type())]
    graph.inputs, graph.outputs = ["a", "b"], ["y"]
    with pytest.raises(UnsupportedOpError, match=r"node sum3 \(add\): The two operands' shapes must broadcast "
                                                 r".* \(shapes \(1, 4, 4, 8\) and \(1, 1, 1, 3\)\)"):
        graph.lint()


def test_get_op_names_the_node_and_lists_the_supported_ops():
    with pytest.raises(UnsupportedOpError, match=r"op 'gelu' \(node n7\) is not supported; supported ops: abs, add, "):
        get_op("gelu", Node("n7", "gelu", [], []))


# The behaviour of the facts on small graphs: each consumer reads the definition, not a table.

def _conv_graph(op: str, kernel=(3, 3), padding=(1, 1, 1, 1), stride=(1, 1)) -> tuple[Graph, Node]:
    attrs = OPS[op].attrs_type(stride=stride, padding=padding)
    w_shape = (4, *kernel, 4) if op == "conv2d" else (1, *kernel, 4)
    graph = Graph("g")
    graph.add_tensor(Tensor("x", (1, 8, 8, 4), "int8", quant=QuantParams.per_tensor(0.1, 0)))
    graph.add_tensor(Tensor("w", w_shape, "int8", np.ones(w_shape, np.int8),
                            QuantParams(np.full(4, 0.01, np.float32), np.zeros(4, np.int32), 0)))
    (shape,) = OPS[op].infer_shapes(attrs, [(1, 8, 8, 4), w_shape])
    graph.add_tensor(Tensor("y", shape, "int8", quant=QuantParams.per_tensor(0.1, 0)))
    node = Node("n", op, ["x", "w"], ["y"], attrs)
    graph.nodes, graph.inputs, graph.outputs = [node], ["x"], ["y"]
    return graph, node


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_convolution_window_comes_from_the_filter_and_attrs(op):
    graph, node = _conv_graph(op, kernel=(3, 5), padding=(1, 2, 1, 2), stride=(2, 1))
    assert OPS[op].window(node, graph) == Window((3, 5), (2, 1), (1, 1), (1, 2, 1, 2))
    patched = OPS[op].with_padding(node.attrs, (0, 2, 1, 0))
    assert patched.padding == (0, 2, 1, 0) and patched.stride == (2, 1)


def test_pad_window_and_patch_padding_keep_the_channel_pads():
    op = get_op("pad")
    node = Node("p", "pad", ["x"], ["y"], op.attrs_type(((0, 0), (1, 2), (3, 4), (0, 5))))
    assert op.window(node, None) == Window(padding=(1, 3, 2, 4))
    assert op.with_padding(node.attrs, (0, 1, 0, 0)).pads == ((0, 0), (0, 0), (1, 0), (0, 5))
    (constraint,) = op.patch_constraints
    assert constraint(node, None) == (True, "pads ((0, 0), (1, 2), (3, 4), (0, 5))")
    for pads in (((1, 0), (0, 0), (0, 0), (0, 0)), ((0, 0), (1, 1))):
        assert not constraint(Node("p", "pad", ["x"], ["y"], op.attrs_type(pads)), None)[0]


def test_only_pointwise_unpadded_convolutions_run_row_wise():
    op = get_op("conv2d")
    assert op.row_wise(*reversed(_conv_graph("conv2d", kernel=(1, 1), padding=(0, 0, 0, 0))))
    assert not op.row_wise(*reversed(_conv_graph("conv2d", kernel=(3, 3))))
    assert not op.row_wise(*reversed(_conv_graph("conv2d", kernel=(1, 1), padding=(0, 0, 0, 0), stride=(2, 2))))
    assert not get_op("depthwise_conv2d").row_wise(*reversed(_conv_graph("depthwise_conv2d", kernel=(1, 1),
                                                                         padding=(0, 0, 0, 0))))


def test_expected_output_error_follows_each_weight_layout():
    """dW . E[x] per output channel: OHWI sums over taps and input channels, 1HWC per channel."""
    mean = np.array([1.0, 2.0])
    conv_error = np.zeros((3, 1, 1, 2))
    conv_error[1, 0, 0] = [0.5, 0.25]
    np.testing.assert_allclose(get_op("conv2d").expected_output_error(conv_error, mean), [0.0, 1.0, 0.0])
    depthwise_error = np.ones((1, 2, 2, 2))
    np.testing.assert_allclose(get_op("depthwise_conv2d").expected_output_error(depthwise_error, mean), [4.0, 8.0])
    np.testing.assert_allclose(get_op("fully_connected").expected_output_error(np.eye(2), mean), [1.0, 2.0])


@pytest.mark.parametrize("name", OP_NAMES)
def test_an_in_place_rule_says_how_the_firmware_honours_it(name):
    """A streaming rule needs the op's row-by-row form (``row_wise``) that the planner's calls describe;
    a channel-by-channel one the scratch its planes take."""
    op = OPS[name]
    rule = op.buffer_share
    if rule is None or not rule.in_place:
        return
    if rule.streams:
        assert _overrides(op, "row_wise"), f"op {name} streams in place but never runs row by row"
    else:
        assert _overrides(op, "inplace_scratch_bytes"), f"op {name} writes in place but states no scratch"
