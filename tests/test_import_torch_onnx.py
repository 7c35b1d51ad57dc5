"""PyTorch and ONNX import: edgekit's float graph computes what the framework computes.

The oracle is PyTorch itself: the zoo's torch module (ImageNet MobileNetV2 weights from the local
cache that `make setup` fills) and small modules built here. The float reference interpreter must
match torch's logits to 1e-4 on real photos and predict sensible ImageNet classes for them.
"""

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.errors import ModelFileError
from edgekit.frontend.images import IMAGENET_MEAN, IMAGENET_STD
from edgekit.frontend.onnx import import_onnx
from edgekit.frontend.tflite import import_tflite
from edgekit.ir.interpreter import run_graph
from edgekit.model_source import load_model
from edgekit.samples import load_inputs
from edgekit.zoo import load_zoo_model

LOGITS_ATOL = 1e-4
SAMOYED = 258
# ImageNet classes a photo may honestly be called (the model's top-1 must be one of them)
EXPECTED_CLASSES = {
    "chelsea.png": {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat"},
    "coffee.png": {967: "espresso", 968: "cup"},
    "grace_hopper.jpg": {457: "bow tie", 652: "military uniform", 906: "Windsor tie"},
}
# The rocket photo's top-1 is an offshore rig (540); a rocket class must be in its top 5.
ROCKET_CLASSES = {812: "space shuttle", 657: "missile", 744: "projectile"}


@pytest.fixture(scope="module")
def torch_mobilenetv2():
    zoo = load_zoo_model("mobilenetv2")
    assert zoo.pretrained, "ImageNet weights missing from the cache; run `make setup`"
    return zoo.module.eval()


def torch_logits(module, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


def float_logits(model, x_nhwc: np.ndarray) -> np.ndarray:
    return run_graph(model.graph, [x_nhwc], mode="float")[model.graph.outputs[0]]


@pytest.mark.slow
def test_mobilenetv2_matches_torch_on_photos(mobilenetv2, torch_mobilenetv2, data_dir):
    """Every photo: interpreter logits within 1e-4 of torch, the same top-1, and a sensible class."""
    images = data_dir / "images"
    names = sorted(p.name for p in images.iterdir())
    inputs = load_inputs(images, mobilenetv2, for_float=True)
    assert len(inputs) == len(names) and inputs[0].shape == (1, 224, 224, 3)
    top5 = {}
    print(f"\n{'photo':<18} {'max |edgekit - torch|':>22}  top-5 (torch)")
    for name, x in zip(names, inputs, strict=True):
        ours, ref = float_logits(mobilenetv2, x), torch_logits(torch_mobilenetv2, x)
        error = float(np.max(np.abs(ours - ref)))
        top5[name] = [int(i) for i in np.argsort(-ref[0])[:5]]
        print(f"{name:<18} {error:>22.2e}  {top5[name]}")
        assert error < LOGITS_ATOL, name
        assert int(np.argmax(ours)) == top5[name][0], name
    for name, classes in EXPECTED_CLASSES.items():
        assert top5[name][0] in classes, f"{name}: top-1 {top5[name][0]}, expected one of {classes}"
    assert set(top5["rocket.jpg"]) & set(ROCKET_CLASSES), f"rocket.jpg top-5 {top5['rocket.jpg']}"


def _dog_as_float(models_dir, data_dir) -> np.ndarray:
    """The TFLM sample's int8 bytes dequantized with the tflite model's own input scale and zero point."""
    graph = import_tflite(models_dir / "tflite-micro" / "mobilenet_v2_int8_224_nchw.tflite")
    quant = graph.tensors[graph.inputs[0]].quant
    raw = np.load(data_dir / "samples" / "dog_bytes_as_int8_1x3x224x224.npy").astype(np.int8)
    assert raw.shape == (1, 3, 224, 224)
    return (raw.astype(np.float32) - quant.scalar_zero_point) * quant.scalar_scale  # NCHW


def test_dog_sample_is_in_imagenet_normalization(models_dir, data_dir):
    """Why the dequantized sample can be fed to the torch model as is.

    Its values pass 2.5, so it is not [-1, 1] pixels; undoing ImageNet's per-channel (RGB) mean and std
    puts all three channels inside [0, 1] with nearly the same range, as real pixels would be.
    """
    x = _dog_as_float(models_dir, data_dir)
    assert x.max() > 2.0
    mean = np.asarray(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD).reshape(1, 3, 1, 1)
    pixels = x * std + mean
    low, high = pixels.min(axis=(0, 2, 3)), pixels.max(axis=(0, 2, 3))
    assert np.all(low >= 0.0) and np.all(high <= 1.0), (low, high)
    assert np.ptp(low) < 0.01 and np.ptp(high) < 0.01, (low, high)


@pytest.mark.slow
def test_mobilenetv2_recognises_the_tflite_micro_dog(mobilenetv2, torch_mobilenetv2, models_dir, data_dir):
    """The TFLM example's dog, fed to the torch model and to edgekit's import of it: class 258, Samoyed."""
    x_nchw = _dog_as_float(models_dir, data_dir)
    x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    ref = torch_logits(torch_mobilenetv2, x_nhwc)
    ours = float_logits(mobilenetv2, x_nhwc)
    assert int(np.argmax(ref)) == SAMOYED
    assert int(np.argmax(ours)) == SAMOYED
    assert np.max(np.abs(ours - ref)) < LOGITS_ATOL


# -- small models through ONNX and .pt -------------------------------------------------------------

def _small_cnn(seed: int = 0) -> nn.Module:
    """conv-BN-ReLU, depthwise-BN-ReLU6, global pool, dense: the layer kinds of MobileNet, BN stats non-trivial."""
    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )
    with torch.no_grad():
        for bn in (module[1], module[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return module.eval()


def _random_image(size: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, size, size, 3)).astype(np.float32)


def _conv_bn_stack(seed: int = 2) -> nn.Module:
    """conv-BN-ReLU, depthwise-BN-ReLU6, 1x1 conv-BN. Convs keep their bias: without one, torch's unoptimized
    export builds a zero bias from Shape/Expand, which edgekit's importer does not take."""
    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4),
    )
    with torch.no_grad():
        for bn in (module[1], module[4], module[7]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return module.eval()


def test_onnx_batchnorm_is_folded_and_keeps_onnx_semantics(tmp_path):
    """An ONNX file that keeps BatchNormalization imports with batch_norm nodes; the pipeline folds them away,
    and both graphs compute torch's output."""
    import onnx

    module = _conv_bn_stack()
    path = tmp_path / "bn.onnx"
    torch.onnx.export(module, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=True, optimize=False, verbose=False)
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("BatchNormalization") == 3

    imported = import_onnx(path)
    folded = load_model(str(path)).graph

    assert [n.op for n in imported.nodes].count("batch_norm") == 3
    assert [(n.op, n.attrs.activation) for n in folded.nodes] == [
        ("conv2d", "relu"), ("depthwise_conv2d", "relu6"), ("conv2d", None)]
    for seed in range(3):
        x = _random_image(16, seed)
        with torch.no_grad():
            ref = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
        for graph in (imported, folded):
            out = run_graph(graph, [x], mode="float")[graph.outputs[0]]
            np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("save", [torch.jit.script, lambda module: torch.jit.trace(module, torch.zeros(1, 3, 16, 16))])
def test_torchscript_module_loads_from_pt(tmp_path, save):
    """A whole module saved as TorchScript (scripted or traced) loads by path, at the resolution asked, and
    matches torch."""
    module = _small_cnn(1)
    path = tmp_path / "user_model.pt"
    torch.jit.save(save(module), path)

    model = load_model(str(path), resolution=24)

    assert model.graph.tensors[model.graph.inputs[0]].shape == (1, 24, 24, 3)
    assert "batch_norm" not in [n.op for n in model.graph.nodes]
    x = _random_image(24)
    np.testing.assert_allclose(float_logits(model, x), torch_logits(module, x), atol=1e-5, rtol=1e-5)


def test_state_dict_of_no_zoo_architecture_is_a_clear_error(tmp_path):
    """A state_dict that fits no zoo architecture: one ModelFileError that says what to save instead."""
    path = tmp_path / "weights.pt"
    torch.save(_small_cnn().state_dict(), path)
    with pytest.raises(ModelFileError, match=r"state_dict that no zoo architecture takes.*torch\.jit\.save") as info:
        load_model(str(path))
    assert "\n" not in str(info.value)


def test_module_pickled_whole_is_refused(tmp_path):
    """torch.save(model) pickles Python classes, which only running code from the file could rebuild: refused."""
    path = tmp_path / "whole.pt"
    torch.save(_small_cnn(), path)
    with pytest.raises(ModelFileError, match=r"whole\.pt holds Python objects.*torch\.jit\.save"):
        load_model(str(path))


def test_zoo_state_dict_loads_with_its_architecture(tmp_path):
    """A state_dict of a zoo MobileNetV2 (width 0.5, 10 classes) loads with the width and class count read
    off its shapes and the zoo's preprocessing, and computes what the module computes."""
    from edgekit.zoo.mobilenetv2 import MobileNetV2

    torch.manual_seed(4)
    module = MobileNetV2(num_classes=10, width=0.5).eval()
    path = tmp_path / "mbv2_half.pth"
    torch.save(module.state_dict(), path)

    model = load_model(str(path), resolution=32)

    assert model.graph.tensors[model.graph.inputs[0]].shape == (1, 32, 32, 3)
    assert model.preprocess.mean is not None and model.preprocess.std is not None
    x = _random_image(32)
    np.testing.assert_allclose(float_logits(model, x), torch_logits(module, x), atol=1e-4, rtol=1e-4)
