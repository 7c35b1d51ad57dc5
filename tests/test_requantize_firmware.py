"""A float model whose MAXIMUM, MINIMUM and CONCATENATION read differently quantized tensors, quantized
by edgekit (which inserts int8 -> int8 QUANTIZE nodes, as TF's converter does), compiled for cortex-m7
and run in the real QEMU: the firmware must equal the integer reference interpreter byte for byte."""

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.compiler import compile_model
from edgekit.ir.serialize import load_graph
from edgekit.runner import run_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]


class Branches(nn.Module):
    """Branches of different ranges (a 3x scaled one) meet in max, min and a channel concat."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        a, b = torch.relu(self.a(x)), self.b(x) * 3.0
        return torch.cat([torch.maximum(a, b), torch.minimum(a, b), b], dim=1)


def test_requantized_inputs_run_bit_exact_in_firmware(data_dir, tmp_path):
    torch.manual_seed(0)
    model = tmp_path / "branches.pt"
    torch.jit.save(torch.jit.script(Branches().eval()), model)
    build = compile_model(str(model), "cortex-m7", resolution=16, calib=str(data_dir / "images"),
                          output=tmp_path / "build")
    graph = load_graph(build.build_dir / "model.ek")
    requantizing = [node for node in graph.nodes if node.op == "quantize"]
    consumers = {node.op for node in graph.nodes for q in requantizing if q.output in node.inputs}
    assert {"maximum", "minimum", "concat"} <= consumers, f"requantized inputs feed {consumers}"
    result = run_build(build.build_dir, timeout_s=120)
    assert result.inputs > 0 and result.bit_exact, f"{result.mismatches} of {result.inputs} outputs differ"
    assert len(np.unique(result.outputs[0])) > 10
