"""The `edgekit` command line, run as a user runs it: a subprocess, exit codes, stdout and stderr.

Every user error must be one line on stderr (``edgekit: error: ...``), exit code 2, and no traceback.
Outputs are checked against the Python API they wrap (the reference interpreter), byte for byte.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from edgekit.frontend.tflite import import_tflite
from edgekit.ir.interpreter import run_graph
from edgekit.ir.serialize import load_graph
from edgekit.ops import get_op

VWW = "mlperf-tiny/vww_96_int8.tflite"
TINY_RESOLUTION = 32


def edgekit(*args, cwd=None, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Run the CLI; ``env`` adds to (or overrides) the environment."""
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_user_error(result, *fragments):
    """Exit code 2, one `edgekit: error:` line naming the problem, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgekit: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    """A small user CNN saved whole as TorchScript, as a user would hand it to edgekit."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    torch.jit.save(torch.jit.script(module), path)
    return path


# -- commands that work ------------------------------------------------------------------------------

def test_help_lists_the_commands():
    result = edgekit("--help")
    assert result.returncode == 0
    for command in ("zoo", "targets", "ops", "inspect", "quantize", "infer", "compile", "run", "report"):
        assert command in result.stdout


def test_zoo_lists_mobilenetv2():
    table = edgekit("zoo")
    assert table.returncode == 0 and "mobilenetv2" in table.stdout
    doc = json.loads(edgekit("zoo", "--json").stdout)
    assert doc["mobilenetv2"]["options"] == {"width": 1.0, "resolution": 224, "num_classes": 1000}


def test_targets_lists_cpus_and_boards():
    table = edgekit("targets")
    assert table.returncode == 0
    doc = json.loads(edgekit("targets", "--json").stdout)
    cpus = [t["name"] for t in doc["cpus"]]
    boards = [b["name"] for b in doc["boards"]]
    assert {"cortex-m4", "cortex-m7", "cortex-m55"} <= set(cpus)
    assert {"stm32f746g-disco", "nucleo-h743zi", "nrf52840-dk", "nucleo-l4r5zi", "netduinoplus2"} <= set(boards)
    for name in cpus + boards:
        assert name in table.stdout


def test_ops_lists_every_op_with_its_facts_and_rules():
    """`edgekit ops` is generated from the op definitions: every op, what it supports, its rules."""
    doc = {op["name"]: op for op in json.loads(edgekit("ops", "--json").stdout)}
    assert {"conv2d", "depthwise_conv2d", "add", "softmax", "batch_norm"} <= set(doc)
    assert doc["depthwise_conv2d"]["weights"] == "per channel, axis 3"
    assert doc["conv2d"]["patches"] and not doc["softmax"]["patches"]
    assert doc["batch_norm"]["int8"].startswith("no: ") and not doc["batch_norm"]["firmware"]
    assert doc["reshape"]["memory_sharing"] == "reshape view"
    assert any("must broadcast" in rule for rule in doc["add"]["constraints"])
    assert any("only a constant" in rule for rule in doc["mul"]["patch_constraints"])
    table = edgekit("ops")
    assert table.returncode == 0
    for name, op in doc.items():
        assert name in table.stdout
        for rule in op["constraints"]:
            assert rule[:40] in table.stdout


def test_inspect_int8_tflite(models_dir):
    """inspect prints a table; --json gives one layer per node and MACs that add up from the shapes."""
    path = models_dir / VWW
    table = edgekit("inspect", path)
    assert table.returncode == 0, table.stderr
    assert "conv2d" in table.stdout and "MACs" in table.stdout

    doc = json.loads(edgekit("inspect", path, "--json").stdout)
    graph = import_tflite(path)
    assert doc["inputs"] == {graph.inputs[0]: {"shape": [1, 96, 96, 3], "dtype": "int8"}}
    assert [layer["node"] for layer in doc["layers"]] == [n.name for n in graph.nodes]
    expected_macs = 0
    for node in graph.nodes:  # out pixels x out channels x taps (x in channels for full convs)
        w = graph.tensors[node.inputs[1]].shape if len(node.inputs) > 1 else None
        out = graph.tensors[node.output].shape
        if node.op == "conv2d":
            expected_macs += out[1] * out[2] * w[0] * w[1] * w[2] * w[3]
        elif node.op == "depthwise_conv2d":
            expected_macs += out[1] * out[2] * w[1] * w[2] * w[3]
        elif node.op == "fully_connected":
            expected_macs += w[0] * w[1]
        else:
            expected_macs += get_op(node.op).macs(node.attrs, [graph.tensors[n].shape for n in node.inputs], [out])
    assert doc["total_macs"] == expected_macs
    assert f"{expected_macs:,}" in table.stdout


def test_infer_int8_tflite_gives_the_reference_bytes(models_dir, tmp_path):
    """infer --int8 on the int8 .tflite writes exactly what run_graph computes."""
    path = models_dir / VWW
    graph = import_tflite(path)
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 96, 96, 3), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)

    result = edgekit("infer", path, "--input", "x.npy", "--int8", "--output", "y.npy", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    got = np.load(tmp_path / "y.npy")
    expected = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
    assert got.dtype == np.int8 and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


@pytest.mark.slow
def test_quantize_then_infer(tiny_pt, data_dir, tmp_path):
    """quantize a user .pt on the photos to x.ek, then infer x.ek --int8 equals run_graph on the saved graph."""
    result = edgekit("quantize", tiny_pt, "--resolution", TINY_RESOLUTION, "--calib", data_dir / "images",
                     "-o", "x.ek", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["calibration_samples"] == 9 and doc["scheme"] == "int8"
    assert 0.0 <= doc["top1_agreement"] <= 1.0
    assert {layer["op"] for layer in doc["layers"]} >= {"conv2d", "fully_connected"}

    graph = load_graph(tmp_path / "x.ek")
    assert graph.tensors[graph.inputs[0]].shape == (1, TINY_RESOLUTION, TINY_RESOLUTION, 3)
    x = np.random.default_rng(9).uniform(0, 1, (1, TINY_RESOLUTION, TINY_RESOLUTION, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    result = edgekit("infer", "x.ek", "--input", "x.npy", "--int8", "--output", "y.npy", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    quant = graph.tensors[graph.inputs[0]].quant
    expected = run_graph(graph, [quant.quantize(x)], mode="int8")[graph.outputs[0]]
    got = np.load(tmp_path / "y.npy")
    assert got.dtype == np.int8 and got.tobytes() == expected.tobytes()
    assert len(set(expected.ravel().tolist())) > 1, "degenerate model: every class got the same score"


# -- user errors: one line, exit code 2, no traceback ------------------------------------------------

def test_missing_model_file(tmp_path):
    assert_user_error(edgekit("inspect", tmp_path / "nowhere.onnx"), "nowhere.onnx", "does not exist")


def test_missing_input_file(models_dir, tmp_path):
    assert_user_error(edgekit("infer", models_dir / VWW, "--input", tmp_path / "none.npy"), "none.npy",
                      "does not exist")


def test_unknown_zoo_model():
    assert_user_error(edgekit("inspect", "mobilenetv9"), "unknown zoo model 'mobilenetv9'", "mobilenetv2")


def test_unsupported_onnx_op(tmp_path):
    """A model with an op edgekit lacks (Sin) names the op."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Sin", ["x"], ["y"], name="wave")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "sin.onnx")

    assert_user_error(edgekit("inspect", tmp_path / "sin.onnx"), "Sin", "wave", "not supported")


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".pt", ".ek"])
def test_corrupt_model_file(tmp_path, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_user_error(edgekit("inspect", path), f"junk{suffix}")


def test_state_dict_of_no_zoo_architecture(tmp_path):
    import torch

    path = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2, 3, 1, 1)}, path)
    assert_user_error(edgekit("inspect", path), "weights.pt", "state_dict", "no zoo architecture", "torch.jit.save")


def test_unknown_target_lists_the_targets(models_dir, tmp_path):
    result = edgekit("compile", models_dir / VWW, "--target", "nosuch", "-o", tmp_path / "build")
    assert_user_error(result, "unknown target 'nosuch'", "cortex-m4", "cortex-m7", "cortex-m55")
    assert not (tmp_path / "build").exists()


def test_unknown_scheme(tiny_pt, data_dir, tmp_path):
    result = edgekit("quantize", tiny_pt, "--resolution", TINY_RESOLUTION, "--calib", data_dir / "images",
                     "--scheme", "int9", "-o", "x.ek", cwd=tmp_path)
    assert_user_error(result, "unknown quantization scheme 'int9'", "int8_per_tensor")
    assert not (tmp_path / "x.ek").exists()


def test_quantize_output_exists_without_force(data_dir, tmp_path):
    """An existing output is refused before any work is done (loading and calibrating take a minute)."""
    (tmp_path / "x.ek").write_bytes(b"keep me")
    started = time.perf_counter()
    result = edgekit("quantize", "mobilenetv2", "--calib", data_dir / "images", "-o", "x.ek", cwd=tmp_path)
    assert_user_error(result, "x.ek exists", "--force")
    assert time.perf_counter() - started < 8, "the check must come before loading the model"
    assert (tmp_path / "x.ek").read_bytes() == b"keep me"


def test_infer_output_exists_without_force(models_dir, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 96, 96, 3), np.int8))
    (tmp_path / "y.npy").write_bytes(b"keep me")
    result = edgekit("infer", models_dir / VWW, "--input", "x.npy", "--output", "y.npy", cwd=tmp_path)
    assert_user_error(result, "y.npy exists", "--force")
    assert (tmp_path / "y.npy").read_bytes() == b"keep me"


def test_int8_flag_on_a_float_model(models_dir, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 96, 96, 3), np.float32))
    result = edgekit("infer", models_dir / "mlperf-tiny/vww_96_float.tflite", "--input", "x.npy", "--int8",
                     cwd=tmp_path)
    assert_user_error(result, "float model", "--int8")


def test_json_error_is_json(tmp_path):
    """With --json a user error is also one JSON object on stdout, with the same exit code."""
    result = edgekit("inspect", tmp_path / "nowhere.tflite", "--json")
    assert_user_error(result, "does not exist")
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2 and "does not exist" in doc["error"]
