"""Whole models through `compile_model` / `run_build` and the `edgekit` CLI: real torch import, real TVM
kernels, real arm-none-eabi-gcc, real QEMU.

A small MobileNetV2 (width 0.35, the stem and the first four inverted residuals, one of them with a
residual add, then global average pooling and a Linear) is compiled once per module at 48 px and
calibrated on a folder of float .npy inputs.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.build import section_sizes
from edgekit.compiler import compile_model
from edgekit.paths import cache_dir
from edgekit.runner import run_build
from edgekit.zoo.mobilenetv2 import MobileNetV2

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

RESOLUTION = 48
CALIB_SAMPLES = 4
EDGEKIT = [sys.executable, "-m", "edgekit.cli"]
RUN_KEYS = {"bit_exact", "inputs", "mismatches", "top1_agreement", "cosine", "max_abs_error", "peak_sram_bytes",
            "arena_bytes", "stack_bytes", "other_static_ram_bytes", "flash_bytes", "external_flash_bytes",
            "instructions_per_inference", "layer_instructions"}


USER_HOME = cache_dir()  # read at import, before plugin_cache redirects EDGEKIT_HOME


@pytest.fixture()
def user_home_env():
    """The environment with the user's EDGEKIT_HOME (where `make setup` put the ImageNet weights)."""
    if not (USER_HOME / "weights").is_dir():
        pytest.skip(f"no pretrained weights in {USER_HOME}; run `make setup`")
    return dict(os.environ, EDGEKIT_HOME=str(USER_HOME))


def small_mobilenetv2() -> nn.Module:
    torch.manual_seed(0)
    full = MobileNetV2(num_classes=10, width=0.35)
    # random batch-norm statistics, so folding them is not the identity
    for module in full.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    features = full.features[:5]
    channels = features[-1].conv[-1].num_features
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)).eval()


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-mbv2")
    model_path = folder / "small.pt"
    torch.jit.save(torch.jit.script(small_mobilenetv2()), model_path)
    calib = folder / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(CALIB_SAMPLES):
        np.save(calib / f"x{i}.npy", rng.normal(0, 1, (1, RESOLUTION, RESOLUTION, 3)).astype(np.float32))
    result = compile_model(str(model_path), "cortex-m7", resolution=RESOLUTION, calib=str(calib),
                           output=folder / "b")
    return result


@pytest.fixture(scope="module")
def small_run(small_build):
    return run_build(small_build.build_dir, timeout_s=120)


def test_small_mobilenetv2_compiles_with_every_kernel_family(small_build):
    manifest = small_build.manifest
    assert manifest["fits"] is True and manifest["target"] == "cortex-m7"
    ops = {layer["op"] for layer in manifest["layers"]}
    assert {"conv2d", "depthwise_conv2d", "add", "fully_connected"} <= ops, ops
    assert ops & {"avg_pool2d", "mean"}, ops
    build = Path(small_build.build_dir)
    for name in ("firmware.elf", "model.ek", "float_model.ek", "test_inputs.npy", "src/model.c", "src/weights.c"):
        assert (build / name).is_file(), name
    assert np.load(build / "test_inputs.npy").shape == (CALIB_SAMPLES, 1, RESOLUTION, RESOLUTION, 3)


def test_small_mobilenetv2_is_bit_exact_in_qemu(small_build, small_run):
    result = small_run
    assert result.inputs == CALIB_SAMPLES
    assert result.bit_exact and result.mismatches == 0
    assert result.top1_agreement is not None and 0.0 <= result.top1_agreement <= 1.0
    assert result.cosine is not None and result.cosine > 0.9, result.cosine
    assert len(result.outputs) == 1  # one graph output
    assert result.outputs[0].shape == (CALIB_SAMPLES, 1, 10) and result.outputs[0].dtype == np.int8
    assert result.instructions_per_inference > 0
    assert len(result.layer_instructions) == len(small_build.manifest["layers"])
    assert all(count > 0 for count in result.layer_instructions)


def test_small_mobilenetv2_memory_accounting(small_build, small_run):
    result, manifest = small_run, small_build.manifest
    assert result.arena_bytes == manifest["arena_bytes"] > 0
    assert 0 < result.stack_bytes <= manifest["sizes"]["stack"]
    assert result.other_static_ram_bytes >= 0
    assert result.peak_sram_bytes == result.arena_bytes + result.stack_bytes + result.other_static_ram_bytes
    # independently of the manifest: the linked image's static RAM (.data + .bss) holds exactly that
    sizes = section_sizes(Path(small_build.build_dir) / "firmware.elf")
    assert sizes.data + sizes.bss == result.arena_bytes + result.other_static_ram_bytes
    assert result.peak_sram_bytes <= manifest["ram_budget_bytes"]
    assert result.flash_bytes == sizes.flash_bytes and result.external_flash_bytes == 0


def test_instruction_count_is_deterministic(small_build, small_run):
    again = run_build(small_build.build_dir, timeout_s=120)
    assert again.instructions_per_inference == small_run.instructions_per_inference
    assert again.layer_instructions == small_run.layer_instructions
    np.testing.assert_array_equal(again.outputs[0], small_run.outputs[0])


def test_cli_run_json_and_outputs(small_build, small_run, tmp_path):
    outputs = tmp_path / "y.npy"
    done = subprocess.run(EDGEKIT + ["run", str(small_build.build_dir), "--json", "--outputs", str(outputs)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert RUN_KEYS <= set(doc), RUN_KEYS - set(doc)
    assert doc["bit_exact"] is True and doc["inputs"] == CALIB_SAMPLES and doc["mismatches"] == 0
    assert doc["top1_agreement"] is not None and doc["cosine"] is not None
    assert doc["instructions_per_inference"] == small_run.instructions_per_inference
    for key in ("peak_sram_bytes", "arena_bytes", "stack_bytes", "flash_bytes"):
        assert doc[key] == getattr(small_run, key), key
    written = np.load(outputs)
    assert written.dtype == np.int8 and len(written) == CALIB_SAMPLES
    np.testing.assert_array_equal(written, small_run.outputs[0])


@pytest.mark.parametrize("json_flag", [True, False], ids=["json", "table"])
def test_cli_compile_that_does_not_fit(json_flag, tmp_path, user_home_env, data_dir):
    destination = tmp_path / "tmp" / "x"
    calib = tmp_path / "calib"  # one photo: calibration is not what this test is about
    calib.mkdir()
    (calib / "photo.jpg").symlink_to(next(data_dir.glob("images/*.jpg")))
    command = EDGEKIT + ["compile", "mobilenetv2", "--target", "cortex-m7", "--resolution", "224", "--patch", "off",
                         "--calib", str(calib), "-o", str(destination)] + (["--json"] if json_flag else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=user_home_env)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("edgekit: error:")]
    assert len(errors) == 1, done.stderr
    assert "SRAM" in errors[0] and "1,505,280 B" in errors[0], errors[0]
    assert "--patch fit" in errors[0], errors[0]
    assert not destination.exists()
    assert not any(destination.parent.glob(".x.*")), "a staged build folder was left behind"
    if json_flag:
        doc = json.loads(done.stdout)
        assert "SRAM" in doc["error"] and doc.get("exit_code", 3) == 3
    else:
        # the layers that make it not fit come first, on stdout: the largest live bytes and weights, not all 65
        assert "conv2d" in done.stdout and "depthwise_conv2d" in done.stdout, done.stdout[:2000]
        peak_node = re.search(r"peak at node (\S+)\)", errors[0]).group(1)
        assert peak_node in done.stdout and "of 65 layers" in done.stdout
        assert len(done.stdout.splitlines()) < 20
