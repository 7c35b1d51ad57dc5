"""The DSP-extension kernels, selected by the target's features, emitted into real firmware and run in
the real QEMU on cortex-m4, cortex-m7 and cortex-m55 (whose conv2d and fully_connected layers get the
Helium kernels), equal the integer reference interpreter byte for byte; so do the portable TVM kernels
that a CPU without the DSP extension gets.

The cases exercise what the DSP kernels special-case: odd pixel and channel counts and K not a multiple
of 4 (the 2x2 blocking's tails), a 3-channel first layer with stride 2 and padding (the im2col of two
pixels), depthwise 3x3 stride 1 (two pixels per step) and stride 2, a 5x5 depthwise, a fully
connected layer, and two residual adds (the C ADD kernel).
"""

import dataclasses

import numpy as np
import pytest
from test_kernels_qemu import Builder, check_firmware_equals_reference, same

from edgekit.codegen.kernels.variants import candidate_variants
from edgekit.codegen.program import emit_program
from edgekit.codegen.wide_weights import CODE_RESERVE_BYTES
from edgekit.ir.tensor import QuantParams
from edgekit.memory import plan_memory
from edgekit.target import load_target

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

TARGETS = ["cortex-m4", "cortex-m7", "cortex-m55"]


def pointwise_tails(seed):
    b = Builder(seed, (1, 5, 7, 13))
    return b.finish(b.conv2d("x", 9, (1, 1), activation="relu6"))


def first_layer_stride2(seed):
    b = Builder(seed, (1, 9, 8, 3))
    return b.finish(b.conv2d("x", 8, (3, 3), stride=(2, 2), padding=same((9, 8), (3, 3), (2, 2))))


def depthwise_stride1_then_stride2(seed):
    b = Builder(seed, (1, 8, 7, 6))
    y = b.depthwise("x", (3, 3), padding=(1, 1, 1, 1), activation="relu")
    return b.finish(b.depthwise(y, (3, 3), stride=(2, 2), padding=same((8, 7), (3, 3), (2, 2))))


def depthwise_channel_tails(seed):
    """Four channels at a time (dsp_c4, stride-1 rows of 5 pixels or more) with a last group of 3: 3x3 VALID
    stride 1 with a ReLU6 clamp, then TFLite's stride-2 "same" (padding only below and right) on an odd width."""
    b = Builder(seed, (1, 6, 17, 7))
    y = b.depthwise("x", (3, 3), activation="relu6")
    return b.finish(b.depthwise(y, (3, 3), stride=(2, 2), padding=same((4, 15), (3, 3), (2, 2))))


def depthwise_5x5_fully_connected(seed):
    b = Builder(seed, (1, 6, 6, 4))
    y = b.depthwise("x", (5, 5), padding=(2, 2, 2, 2))
    return b.finish(b.fully_connected(b.reshape(y, (1, 144)), 7))


def general_requantization(seed):
    """Real multipliers 0.9 and 0.6 (shift 0) beside 0.004 and 0.002: the layer cannot use the narrow
    requantization; small biases keep the outputs off the clamp."""
    b = Builder(seed, (1, 6, 6, 1))
    y = b.conv2d("x", 4, (1, 1))
    node = b.graph.nodes[-1]
    weight, bias = b.graph.tensors[node.inputs[1]], b.graph.tensors[node.inputs[2]]
    in_scale, out_scale = b.quant("x").scalar_scale, b.quant(y).scalar_scale
    w_scale = np.array([0.9, 0.004, 0.002, 0.6], dtype=np.float32) * out_scale / in_scale
    weight.quant = QuantParams(w_scale, np.zeros(4), 0)
    bias.quant = QuantParams((in_scale * w_scale).astype(np.float32), np.zeros(4), 0)
    bias.data = np.array([30, -2000, 5000, -40], dtype=np.int32)
    return b.finish(y)


def residual_adds(seed):
    """The C ADD kernel (SMMULR form) on every target: no activation (the whole int8 range), then ReLU;
    210 elements, not a multiple of the unrolling."""
    b = Builder(seed, (1, 5, 6, 7))
    y = b.add("x", b.conv2d("x", 7, (1, 1)))
    return b.finish(b.add(y, "x", activation="relu"))


CASES = [pointwise_tails, first_layer_stride2, depthwise_stride1_then_stride2, depthwise_5x5_fully_connected,
         general_requantization, residual_adds, depthwise_channel_tails]


def small_flash(target):
    """``target`` with a flash that leaves no room for a second, int16 copy of the weights, and no external flash."""
    regions = tuple(dataclasses.replace(r, length=CODE_RESERVE_BYTES + 1) if r.role == "code" else r
                    for r in target.regions if r.role != "external-weights")
    return dataclasses.replace(target, regions=regions)


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_dsp_kernels_are_bit_exact_in_qemu(case, target_name, tmp_path):
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), target_name, tmp_path, seed)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_int8_weight_dsp_kernels_are_bit_exact_in_qemu(case, tmp_path):
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), small_flash(load_target("cortex-m7")), tmp_path, seed)


def _mac_kernels(target, tmp_path) -> list[str]:
    names = []
    for i, case in enumerate(CASES):
        graph = case(100 + i)
        program = emit_program(graph, plan_memory(graph), target, tmp_path / f"src{i}")
        names += [name for name in program.kernel_names if "conv2d" in name or "fully_connected" in name]
    return names


def test_the_cases_get_every_dsp_kernel(tmp_path):
    """The firmware above really runs DSP kernels, int8 and int16 weights, narrow and general requantization."""
    wide, small = _mac_kernels(load_target("cortex-m7"), tmp_path), _mac_kernels(small_flash(load_target("cortex-m7")),
                                                                                    tmp_path / "small")
    assert all("_s8_dsp_" in name for name in wide + small), wide + small
    depthwise = [name for name in wide if "depthwise" in name]
    assert any("_dsp_c4_" in name for name in depthwise) and any("_dsp_c4_" not in name for name in depthwise)
    assert any("_dsp_w16_" in name for name in wide) and not any("_w16_" in name for name in small)
    assert any("_narrow_" in name for name in wide) and any("_narrow_" not in name for name in wide)
    helium = _mac_kernels(load_target("cortex-m55"), tmp_path / "m55")
    assert any("_s8_mve_" in name for name in helium) and not any("_mve_" in name for name in wide)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_portable_kernels_without_dsp_are_bit_exact_in_qemu(case, tmp_path):
    no_dsp = dataclasses.replace(load_target("cortex-m7"), dsp=False)
    assert candidate_variants("conv2d", None, no_dsp) == ["tvm"]
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), no_dsp, tmp_path, seed)


@pytest.mark.parametrize("case", [depthwise_stride1_then_stride2, depthwise_channel_tails], ids=lambda case: case.__name__)
def test_dsp_depthwise_kernels_without_helium_are_bit_exact_on_cortex_m55(case, tmp_path):
    """cortex-m55's depthwise layers get the Helium kernel; with MVE switched off its DSP extension runs the
    dsp_c4 and dsp kernels, checked here in the same QEMU machine (mps3-an547)."""
    m55 = load_target("cortex-m55")
    no_mve = dataclasses.replace(m55, cpu=dataclasses.replace(m55.cpu, mve=False))
    graph = case(100 + CASES.index(case))
    names = emit_program(graph, plan_memory(graph), no_mve, tmp_path / "names").kernel_names
    assert any("_dsp_c4_" in name for name in names), names
    check_firmware_equals_reference(graph, no_mve, tmp_path, 100 + CASES.index(case))
