"""`edgekit compress` end to end on a tiny inverted-residual network and synthetic 4-class data."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.cli import main
from edgekit.model_source import load_model
from edgekit.zoo.mobilenetv2 import InvertedResidual, conv_bn_relu6

pytestmark = pytest.mark.usefixtures("private_edgekit_home")


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu6(1, 8, stride=2), InvertedResidual(8, 8, 1, 3),
                                      InvertedResidual(8, 8, 1, 3), InvertedResidual(8, 16, 2, 3),
                                      conv_bn_relu6(16, 32, kernel=1))
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model.onnx, data.npz): class c brightens rows 4c..4c+3 of a 16x16 image."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = TinyNet().eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(folder / "tiny.onnx"), dynamo=True, verbose=False)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 160)
    x = rng.random((160, 16, 16, 1)) * 0.3
    for c in range(4):
        x[y == c, 4 * c:4 * c + 4] += 0.7
    np.savez(folder / "data.npz", x=(x * 255).astype(np.uint8), y=y)
    return folder / "tiny.onnx", folder / "data.npz"


def run_json(capsys, *argv):
    code = main(list(argv) + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("mode", ["dp", "layermerge"])
def test_epochs_0_with_estimated_latency(tiny, tmp_path, capsys, mode):
    model, data = tiny
    out = tmp_path / "c.onnx"
    code, doc = run_json(capsys, "compress", str(model), "--target", "cortex-m7", "--budget", "0.85", "--data",
                         str(data), "--mode", mode, "--epochs", "0", "--estimate", "--no-measure", "-o", str(out))
    assert code == 0, doc
    assert doc["finetune_steps"] == 0 and doc["latency_source"].startswith("estimate")
    assert doc["predicted_instructions_after"] <= 0.85 * doc["predicted_instructions_before"]
    assert doc["convolutions_after"] < doc["convolutions_before"] == 11
    compressed = load_model(str(out)).graph
    convs = [n for n in compressed.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    assert len(convs) == doc["convolutions_after"]


@pytest.fixture(scope="module")
def measured(tiny, tmp_path_factory):
    """One `compress --epochs 1` run with latency measured in QEMU (its --json document)."""
    model, data = tiny
    out = tmp_path_factory.mktemp("measured") / "c.onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["compress", str(model), "--target", "cortex-m7", "--budget", "0.75", "--data", str(data),
                     "--epochs", "1", "--max-kernel", "3", "-o", str(out), "--json"])
    doc = json.loads(stdout.getvalue())
    assert code == 0, doc
    return doc


@pytest.mark.slow
def test_epochs_1_measured_in_qemu(measured):
    """Latency measured in QEMU; the compressed network runs bit-exact and faster."""
    assert measured["finetune_steps"] >= 1 and measured["latency_source"] == "measured in QEMU"
    before, after = measured["measured"]["before"], measured["measured"]["after"]
    assert after["bit_exact"] and before["bit_exact"]
    assert after["instructions"] < 0.8 * before["instructions"]


@pytest.mark.slow
def test_latency_table_is_additive_within_2_percent(measured):
    """The table's predicted total is within 2% of the compiled network's measured count: each layer's entry
    is measured with the kernel variant the code generator gives it in the compiled network."""
    before, after = measured["measured"]["before"], measured["measured"]["after"]
    assert abs(measured["predicted_instructions_before"] - before["instructions"]) < 0.02 * before["instructions"]
    assert abs(measured["predicted_instructions_after"] - after["instructions"]) < 0.02 * after["instructions"]


def test_infeasible_budget_says_why(tiny, tmp_path, capsys):
    model, data = tiny
    code = main(["compress", str(model), "--target", "cortex-m7", "--budget", "0.05", "--data", str(data),
                 "--epochs", "0", "--estimate", "--no-measure", "-o", str(tmp_path / "c.onnx")])
    assert code == 2
    assert "--budget 0.05: the cheapest dp plan needs 0." in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


def test_bad_data_and_output_are_one_line_errors(tiny, tmp_path, capsys):
    model, _ = tiny
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8, 1), np.uint8), y=np.zeros(4, np.int64))
    assert main(["compress", str(model), "--target", "cortex-m7", "--budget", "0.7", "--data", str(bad),
                 "-o", str(tmp_path / "c.onnx")]) == 2
    assert "samples of shape (8, 8, 1) but the model takes (16, 16, 1)" in capsys.readouterr().err
    assert main(["compress", str(model), "--target", "cortex-m7", "--budget", "0.7", "--data", str(bad),
                 "-o", str(tmp_path / "c.tflite")]) == 2
    assert "name it *.onnx" in capsys.readouterr().err
