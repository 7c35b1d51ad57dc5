"""ONNX mappings of the new ops (Mul, Sub, Max, Min, PRelu, Sigmoid, Tanh, HardSwish, LeakyRelu), through
torch's exporter: edgekit's float graph computes what torch computes, with NCHW constants (PReLU slopes,
per-channel scales) brought to NHWC."""

import numpy as np
import pytest
import torch
from test_import_torch_onnx import torch_logits
from torch import nn

from edgekit.api import quantize
from edgekit.frontend.torch import import_torch_module
from edgekit.ir.interpreter import run_graph
from edgekit.passes import run_pipeline


class SqueezeExciteBlock(nn.Module):
    """MobileNetV3-style: hard-swish, squeeze-and-excite gate, and the other new elementwise ops."""

    def __init__(self, minmax: bool = True):
        super().__init__()
        self.minmax = minmax
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.reduce = nn.Conv2d(8, 4, 1)
        self.expand = nn.Conv2d(4, 8, 1)
        self.prelu = nn.PReLU(8)
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 8).reshape(1, 8, 1, 1))

    def forward(self, x):
        y = nn.functional.hardswish(self.conv(x))
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(y.mean(dim=(2, 3), keepdim=True)))))
        y = y * gate
        z = torch.tanh(y) - nn.functional.leaky_relu(y * self.scale, 0.2)
        if self.minmax:
            z = torch.maximum(torch.minimum(z, y), y * 0.5)
        return self.prelu(z)


def test_new_onnx_ops_match_torch():
    torch.manual_seed(0)
    module = SqueezeExciteBlock().eval()
    with torch.no_grad():
        module.prelu.weight.copy_(torch.linspace(0.05, 0.4, 8))
    graph = run_pipeline(import_torch_module(module, (1, 3, 12, 12)))
    ops = {node.op for node in graph.nodes}
    assert {"hard_swish", "logistic", "mul", "tanh", "sub", "leaky_relu", "maximum", "minimum", "prelu"} <= ops
    x = np.random.default_rng(3).uniform(-2, 2, size=(1, 12, 12, 3)).astype(np.float32)
    ours = run_graph(graph, [x], mode="float")[graph.outputs[0]]
    want = torch_logits(module, x).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, want, atol=1e-5)


def _loaded(module):
    from edgekit.model_source import LoadedModel, _default_preprocess

    graph = run_pipeline(import_torch_module(module.eval(), (1, 3, 12, 12)))
    return LoadedModel("se", graph, _default_preprocess(graph))


def test_float_model_with_new_ops_quantizes_close_to_float(data_dir):
    """edgekit's own quantizer on the new ops: constant operands become int8, logistic gets TFLite's
    fixed output parameters, and the int8 graph stays close to the float one on photos."""
    torch.manual_seed(0)
    result = quantize(_loaded(SqueezeExciteBlock(minmax=False)), str(data_dir / "images"))
    int8 = result.model.graph
    constants = [t for t in int8.tensors.values() if t.is_constant and t.dtype == "int8" and t.data.size == 8
                 and t.data.ndim == 4]
    assert len(constants) == 2, "the per-channel scale and the PReLU slopes should be int8 constants"
    logistic_out = next(int8.tensors[n.output] for n in int8.nodes if n.op == "logistic")
    assert (logistic_out.quant.scalar_scale, logistic_out.quant.scalar_zero_point) == (1 / 256, -128)
    assert min(e.cosine for e in result.layer_errors) > 0.98


def test_maximum_minimum_inputs_are_requantized_to_the_output(data_dir):
    """MAXIMUM/MINIMUM compare raw int8 values, so edgekit's quantizer gives every input the output's
    quantization: an int8 -> int8 quantize before each input quantized otherwise, as TF's converter."""
    torch.manual_seed(0)
    result = quantize(_loaded(SqueezeExciteBlock()), str(data_dir / "images"))
    int8 = result.model.graph
    producers = {node.output: node for node in int8.nodes}
    requantized = 0
    for node in (n for n in int8.nodes if n.op in ("maximum", "minimum")):
        target = int8.tensors[node.output].quant
        for name in node.inputs:
            quant = int8.tensors[name].quant
            assert (quant.scalar_scale, quant.scalar_zero_point) == (target.scalar_scale, target.scalar_zero_point)
            requantized += producers[name].op == "quantize"
    assert requantized >= 2
    assert min(e.cosine for e in result.layer_errors) > 0.98


def _matches_torch_and_quantizes(make, data_dir, seed: int):
    """``make()``'s float graph computes what torch computes on inputs in [-3, 3], and edgekit's int8
    graph of it stays close to float on photos. Returns the float graph."""
    torch.manual_seed(0)
    module = make().eval()
    graph = run_pipeline(import_torch_module(module, (1, 3, 12, 12)))
    x = np.random.default_rng(seed).uniform(-3, 3, size=(1, 12, 12, 3)).astype(np.float32)
    ours = run_graph(graph, [x], mode="float")[graph.outputs[0]]
    np.testing.assert_allclose(ours, torch_logits(module, x).transpose(0, 2, 3, 1), atol=1e-5)
    result = quantize(_loaded(make()), str(data_dir / "images"))
    assert min(e.cosine for e in result.layer_errors) > 0.98
    return graph


class BroadcastAdds(nn.Module):
    """Adds that broadcast: Keras-style hard-sigmoid ``relu6(x + 3) / 6``, a per-channel bias, and a
    global mean added back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.register_buffer("bias", torch.linspace(-0.5, 0.5, 8).reshape(1, 8, 1, 1))

    def forward(self, x):
        y = torch.relu(self.conv(x))
        gate = nn.functional.relu6(y + 3.0) * (1.0 / 6.0)
        return gate * y + self.bias + y.mean(dim=(2, 3), keepdim=True)


def test_broadcast_adds_match_torch_and_quantize(data_dir):
    graph = _matches_torch_and_quantizes(BroadcastAdds, data_dir, 4)
    adds = [node for node in graph.nodes if node.op == "add"]
    assert len(adds) == 3 and any(graph.tensors[name].is_constant for node in adds for name in node.inputs)


class Upsampler(nn.Module):
    """A decoder step: strided ConvTranspose2d (pads, output_padding) with bias, then ReLU."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 5, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return torch.relu(self.up(torch.relu(self.conv(x))))


def test_conv_transpose_matches_torch_and_quantizes(data_dir):
    graph = _matches_torch_and_quantizes(Upsampler, data_dir, 5)
    node = next(n for n in graph.nodes if n.op == "transpose_conv")
    assert node.attrs.activation == "relu" and graph.tensors[node.output].shape == (1, 24, 24, 5)


class Shuffles(nn.Module):
    """Sub-pixel upsampling (PixelShuffle: ONNX DepthToSpace in CRD order) after a conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(torch.relu(self.conv(x)), 2)


def test_pixel_shuffle_matches_torch():
    torch.manual_seed(0)
    module = Shuffles().eval()
    graph = run_pipeline(import_torch_module(module, (1, 3, 8, 8)))
    assert "transpose" in {node.op for node in graph.nodes}
    x = np.random.default_rng(6).uniform(-2, 2, size=(1, 8, 8, 3)).astype(np.float32)
    ours = run_graph(graph, [x], mode="float")[graph.outputs[0]]
    np.testing.assert_allclose(ours, torch_logits(module, x).transpose(0, 2, 3, 1), atol=1e-5)


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
def test_onnx_depth_space_follow_the_onnx_formulas(op, tmp_path):
    """DCR DepthToSpace and SpaceToDepth against the ONNX specification's NCHW reshape-transpose."""
    from onnx import TensorProto, helper, save

    from edgekit.frontend.onnx import import_onnx

    shape = (1, 8, 4, 6)  # NCHW
    node = helper.make_node(op, ["x"], ["y"], name="moved", blocksize=2)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    x = np.random.default_rng(8).normal(size=shape).astype(np.float32)
    n, c, h, w = shape
    if op == "DepthToSpace":
        want = x.reshape(n, 2, 2, c // 4, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // 4, h * 2, w * 2)
    else:
        want = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * 4, h // 2, w // 2)
    imported = import_onnx(tmp_path / "m.onnx")
    ours = run_graph(imported, [x.transpose(0, 2, 3, 1)], mode="float")[imported.outputs[0]]
    np.testing.assert_array_equal(ours, want.transpose(0, 2, 3, 1))


class HardSigmoidGate(nn.Module):
    """torchvision's MobileNetV3 squeeze-and-excite gate (Hardsigmoid), and a Hardsigmoid over the map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        gate = nn.functional.hardsigmoid(y.mean(dim=(2, 3), keepdim=True))
        return y * gate + nn.functional.hardsigmoid(y * 2.0)


def test_hard_sigmoid_matches_torch_and_quantizes(data_dir, tmp_path):
    from onnx import TensorProto, helper, save

    from edgekit.frontend.onnx import import_onnx

    _matches_torch_and_quantizes(HardSigmoidGate, data_dir, 7)
    # ONNX's own defaults (alpha 0.2, beta 0.5), straight from a file
    node = helper.make_node("HardSigmoid", ["x"], ["y"], name="gate")
    onnx_graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 2, 3, 3))],
                                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    save(helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "h.onnx"))
    values = np.linspace(-4, 4, 18, dtype=np.float32).reshape(1, 3, 3, 2)
    imported = import_onnx(tmp_path / "h.onnx")
    got = run_graph(imported, [values], mode="float")[imported.outputs[0]]
    np.testing.assert_allclose(got, np.clip(0.2 * values + 0.5, 0, 1), atol=1e-6)


class Clamps(nn.Module):
    """Clips that are not ReLU or ReLU6: Hardtanh's [-1, 1] and a one-sided torch.clamp."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return nn.functional.hardtanh(y) + torch.clamp(y, max=0.5)


def test_any_clip_matches_torch_and_quantizes(data_dir):
    graph = _matches_torch_and_quantizes(Clamps, data_dir, 9)
    assert {"maximum", "minimum"} <= {node.op for node in graph.nodes}
