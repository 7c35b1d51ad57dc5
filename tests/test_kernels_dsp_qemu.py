"""The DSP-extension kernels, selected by the target's features, emitted into real firmware and run in
the real QEMU on cortex-m4, cortex-m7 and cortex-m55, equal the integer reference interpreter byte for
byte; so do the portable TVM kernels that a CPU without the DSP extension gets.

The cases exercise what the DSP kernels special-case: odd pixel and channel counts and K not a multiple
of 4 (the 2x2 blocking's tails), a 3-channel first layer with stride 2 and padding (the im2col of two
pixels), depthwise 3x3 stride 1 (two pixels per step) and stride 2, a 5x5 depthwise, and a fully
connected layer.
"""

import dataclasses

import pytest
from test_kernels_qemu import Builder, check_firmware_equals_reference, same

from edgekit.codegen.kernels.variants import candidate_variants
from edgekit.codegen.program import emit_program
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


def depthwise_5x5_fully_connected(seed):
    b = Builder(seed, (1, 6, 6, 4))
    y = b.depthwise("x", (5, 5), padding=(2, 2, 2, 2))
    return b.finish(b.fully_connected(b.reshape(y, (1, 144)), 7))


CASES = [pointwise_tails, first_layer_stride2, depthwise_stride1_then_stride2, depthwise_5x5_fully_connected]


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_dsp_kernels_are_bit_exact_in_qemu(case, target_name, tmp_path):
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), target_name, tmp_path, seed)


def test_the_cases_get_dsp_kernels(tmp_path):
    """The firmware above really runs DSP kernels: every MAC kernel of the cases is a dsp variant."""
    target = load_target("cortex-m7")
    for i, case in enumerate(CASES):
        graph = case(100 + i)
        program = emit_program(graph, plan_memory(graph), target, tmp_path / f"src{i}")
        mac = [name for name in program.kernel_names if "conv2d" in name or "fully_connected" in name]
        assert mac and all("_s8_dsp_" in name for name in mac), program.kernel_names


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_portable_kernels_without_dsp_are_bit_exact_in_qemu(case, tmp_path):
    no_dsp = dataclasses.replace(load_target("cortex-m7"), dsp=False)
    assert candidate_variants("conv2d", None, no_dsp) == ["tvm"]
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), no_dsp, tmp_path, seed)
