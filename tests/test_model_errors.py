"""Every unsupported-op and bad-model error names the file, the op and the node, in one line: ONNX
importer refusals, graph rules broken (``Graph.lint``), a PyTorch model whose export holds an
unsupported op, a float model that cannot be quantized, and an int8 op without a C kernel at compile
time (refused before any planning). The TFLite, Keras and several-input refusals are tested beside
their importers (test_tflite_import.py, test_keras_import.py, test_several_inputs.py)."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from edgekit.compiler import compile_model
from edgekit.errors import UnsupportedOpError
from edgekit.ir import Graph, Node, QuantParams, Tensor
from edgekit.ir.serialize import save_graph
from edgekit.model_source import load_model
from edgekit.ops import get_op


def _onnx(path, nodes, inputs, initializers=()):
    """A one-output ONNX model ``y`` of float inputs ``inputs`` (name -> NCHW shape)."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                                           for name, shape in inputs.items()],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(value, name) for name, value in initializers])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


X = {"x": (1, 3, 8, 8)}
CASES = {
    "unknown_op": ([helper.make_node("Log", ["x"], ["y"], name="natural_log")], X, (),
                   r"^unknown_op\.onnx: ONNX op Log \(node natural_log\) is not supported"),
    "ceil_pool": ([helper.make_node("MaxPool", ["x"], ["y"], name="pool7", kernel_shape=[3, 3], ceil_mode=1)], X, (),
                  r"^ceil_pool\.onnx: ONNX node pool7 \(MaxPool\): ceil_mode and count_include_pad with padding are "
                  "not supported"),
    "no_broadcast": ([helper.make_node("Add", ["x", "z"], ["y"], name="sum3")], {**X, "z": (1, 2, 8, 8)}, (),
                     r"^no_broadcast\.onnx: node sum3 \(add\): The two operands' shapes must broadcast"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_refusals_name_the_file_the_op_and_the_node(case, tmp_path):
    nodes, inputs, initializers, message = CASES[case]
    path = _onnx(tmp_path / f"{case}.onnx", nodes, inputs, initializers)
    with pytest.raises(UnsupportedOpError, match=message) as info:
        load_model(str(path))
    assert "\n" not in str(info.value)


def test_torch_model_with_an_unsupported_op_names_the_file(tmp_path):
    import torch

    class Gelu(torch.nn.Module):
        def forward(self, x):
            return torch.erf(x)

    path = tmp_path / "erf.pt"
    torch.jit.save(torch.jit.script(Gelu()), path)
    with pytest.raises(UnsupportedOpError, match=r"^erf\.pt: ONNX op Erf \(node .+\) is not supported") as info:
        load_model(str(path), resolution=16)
    assert "\n" not in str(info.value)


def test_float_model_that_cannot_be_quantized_names_the_file_and_node(tmp_path, data_dir):
    """A batch norm after a ReLU folds into nothing: the compile names the file, node and op."""
    channels = 3
    stats = [(name, value.astype(np.float32)) for name, value in (
        ("gamma", np.full(channels, 1.5)), ("beta", np.full(channels, 0.1)), ("mean", np.zeros(channels)),
        ("var", np.ones(channels)))]
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu0"),
             helper.make_node("BatchNormalization", ["r", "gamma", "beta", "mean", "var"], ["y"], name="bn1")]
    path = _onnx(tmp_path / "standalone_bn.onnx", nodes, X, stats)
    with pytest.raises(UnsupportedOpError, match=r"standalone_bn\.onnx: node bn1 \(batch_norm\): a batch norm must "
                                                 r"directly follow a conv2d") as info:
        compile_model(str(path), "cortex-m7", calib=str(data_dir / "images"), output=tmp_path / "build")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "build").exists()


def _refused_before_planning(graph, tmp_path, message: str) -> None:
    """Compiling ``graph`` (saved as a hand-made .ek, as tests make graphs no importer would) fails with
    one line matching ``message`` after the file's path, and leaves no build folder."""
    path = tmp_path / f"{graph.name}.ek"
    save_graph(graph, path)
    with pytest.raises(UnsupportedOpError, match=rf"^{path}: {message}") as info:
        compile_model(str(path), "cortex-m7", output=tmp_path / "build")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "build").exists()


def test_op_without_a_c_kernel_is_refused_before_planning(tmp_path):
    """An int8 graph holding an op that has no C kernel: file, op, node and the ops that do have kernels,
    before any planning or code generation."""
    q = QuantParams.per_tensor(0.05, 0)
    graph = Graph("no_kernel")
    graph.add_tensor(Tensor("x", (1, 4, 4, 2), "int8", quant=q))
    for name in ("gamma", "beta", "mean", "var"):
        graph.add_tensor(Tensor(name, (2,), "float32", np.ones(2, np.float32)))
    graph.add_tensor(Tensor("y", (1, 4, 4, 2), "int8", quant=q))
    graph.nodes = [Node("bn7", "batch_norm", ["x", "gamma", "beta", "mean", "var"], ["y"],
                        get_op("batch_norm").attrs_type())]
    graph.inputs, graph.outputs = ["x"], ["y"]
    _refused_before_planning(graph, tmp_path,
                             r"op 'batch_norm' \(node bn7\) has no C kernel yet; ops with kernels: abs, add, ")


def test_float_section_inside_an_int8_model_is_refused_before_planning(tmp_path):
    """TensorFlow's converter may leave ops in float32 between a DEQUANTIZE and a QUANTIZE; the
    interpreter runs them, but edgekit's kernels are int8, so compile names the node and the tensor."""
    from edgekit.ops.strided_slice import StridedSliceAttrs

    q = QuantParams.per_tensor(0.05, 3)
    graph = Graph("float_inside")
    graph.add_tensor(Tensor("x", (1, 4, 4, 2), "int8", quant=q))
    graph.add_tensor(Tensor("real", (1, 4, 4, 2), "float32"))
    graph.add_tensor(Tensor("rows", (1, 2, 4, 2), "float32"))
    graph.add_tensor(Tensor("y", (1, 2, 4, 2), "int8", quant=q))
    no_attrs = get_op("quantize").attrs_type
    graph.nodes = [Node("to_float", "dequantize", ["x"], ["real"], no_attrs()),
                   Node("top_rows", "strided_slice", ["real"], ["rows"],
                        StridedSliceAttrs(((0, 1, 1), (0, 2, 1), (0, 4, 1), (0, 2, 1)))),
                   Node("to_int8", "quantize", ["rows"], ["y"], no_attrs())]
    graph.inputs, graph.outputs = ["x"], ["y"]
    _refused_before_planning(graph, tmp_path, r"node top_rows \(strided_slice\) computes in float32 \(tensor 'real'\) "
                             "inside an int8 model")
