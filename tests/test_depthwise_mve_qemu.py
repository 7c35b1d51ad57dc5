"""The Helium depthwise kernel (``codegen/kernels/depthwise_mve.py``), which cortex-m55 depthwise layers
get, emitted into real firmware and run in the real QEMU (mps3-an547), equals the integer reference
interpreter byte for byte.

The cases exercise what the kernel special-cases: channel counts that are not a multiple of 16 or 4
(the predicated last group and block), output widths that are not a multiple of 4 pixels (the last
step), border rows and columns of SAME padding at stride 1 and 2 (odd and even inputs), VALID windows,
a 5x5 window and a dilated one, the three compiled-in clamps, TFLite's rounding of negative ties in
both requantization forms (general and narrow), where a plain rounding shift would differ, and layers
that write over their own input.
"""

import subprocess

import numpy as np
import pytest
from test_kernels_host import WARNINGS
from test_kernels_qemu import Builder, check_firmware_equals_reference, same

from edgekit.build import build_firmware
from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec
from edgekit.codegen.kernels.depthwise_mve import HEADER_NAME, HEADER_TEXT, block_filter, depthwise_conv2d_mve_kernel
from edgekit.codegen.program import emit_program
from edgekit.emulate import run_firmware
from edgekit.fixedpoint import multiply_by_quantized_multiplier, saturating_rounding_doubling_high_mul
from edgekit.ir.interpreter import run_graph
from edgekit.ir.tensor import QuantParams
from edgekit.memory import plan_memory
from edgekit.ops.conv_params import mac_int8_params
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.window import Window, pad_hw, windows
from edgekit.target import load_target

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

M55 = "cortex-m55"


def odd_shapes_same_padding(seed):
    """21 channels (a group of 16, then one of 5: a block of 4 and a block of 1), 9x11: SAME stride 1 with
    ReLU6 (both clamp bounds at run time), SAME stride 2 on an odd input (padding on every side) with
    ReLU (a run-time lower bound), then VALID stride 2 (none)."""
    b = Builder(seed, (1, 9, 11, 21))
    y = b.depthwise("x", (3, 3), padding=same((9, 11), (3, 3), (1, 1)), activation="relu6")
    y = b.depthwise(y, (3, 3), stride=(2, 2), padding=same((9, 11), (3, 3), (2, 2)), activation="relu")
    return b.finish(b.depthwise(y, (3, 3), stride=(2, 2)))


def even_stride2_and_wide_windows(seed):
    """6 channels, 10x14: SAME stride 2 on an even input (bottom/right padding only), a 5x5 window and
    a dilated 3x3 one (dilation 2), 7 output columns (one group of 4 and one of 3)."""
    b = Builder(seed, (1, 10, 14, 6))
    y = b.depthwise("x", (3, 3), stride=(2, 2), padding=same((10, 14), (3, 3), (2, 2)))
    y = b.depthwise(y, (5, 5), padding=(2, 2, 2, 2))
    shape = b.graph.tensors[y].shape
    dilated = DepthwiseConv2dAttrs(dilation=(2, 2), padding=(2, 2, 2, 2))
    return b.finish(b.mac("depthwise_conv2d", y, (1, 3, 3, 6), 3, 9, shape, dilated))


def unusual_windows(seed):
    """3 channels (less than one block of 4), 11x6: a 1x1 window at stride 2 (input rows that no window
    reads), a 7x7 window wider than its 6x3 input (padding 3), then a 3x3 window at stride 3."""
    b = Builder(seed, (1, 11, 6, 3))
    y = b.depthwise("x", (1, 1), stride=(2, 2), activation="relu")
    y = b.depthwise(y, (7, 7), padding=(3, 3, 3, 3))
    return b.finish(b.depthwise(y, (3, 3), stride=(3, 3), padding=(1, 1, 1, 1)))


# real multipliers per channel, powers of two times 1 or 3: Q31 multiplier 2^30 (or 3 * 2^29) makes
# the high product (acc + 1) >> 1 (or a multiple of 3 / 4), so right shifts often meet exact halves;
# 0.5 and 1.5 (shifts 0 and +1) force the general form, the second layer's are all right shifts
TIE_MULTIPLIERS = ([1 / 16, 1 / 32, 3 / 64, 1 / 2, 3 / 2], [1 / 16, 1 / 8, 3 / 64, 1 / 32, 1 / 64])


def negative_ties(seed):
    """Two 3x3 SAME layers, 5 channels, scales that are powers of two and small weights: many
    accumulators fall exactly halfway between two outputs (:func:`tie_count`)."""
    b = Builder(seed, (1, 7, 9, 5))
    b.graph.tensors["x"].quant = QuantParams.per_tensor(2.0 ** -4, 3)
    y = "x"
    for multipliers in TIE_MULTIPLIERS:
        y = b.depthwise(y, (3, 3), padding=(1, 1, 1, 1))
        node = b.graph.nodes[-1]
        weight, bias = b.graph.tensors[node.inputs[1]], b.graph.tensors[node.inputs[2]]
        scale = np.array(multipliers, dtype=np.float32)  # input and output scale 2^-4
        weight.data = b.rng.integers(-9, 10, size=weight.shape).astype(np.int8)
        weight.quant = QuantParams(scale, np.zeros(5), 3)
        bias.data = b.rng.integers(-300, 300, size=5).astype(np.int32)
        bias.quant = QuantParams((scale * 2.0 ** -4).astype(np.float32), np.zeros(5), 0)
        b.graph.tensors[y].quant = QuantParams.per_tensor(2.0 ** -4, -5)
    return b.finish(y)


CASES = [odd_shapes_same_padding, even_stride2_and_wide_windows, unusual_windows, negative_ties]


def mve_depthwise_kernels(graph, tmp_path) -> list[str]:
    program = emit_program(graph, plan_memory(graph), load_target(M55), tmp_path)
    return [name for name in program.kernel_names if "depthwise" in name]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_helium_depthwise_is_bit_exact_in_qemu(case, tmp_path):
    seed = 300 + CASES.index(case)
    graph = case(seed)
    names = mve_depthwise_kernels(graph, tmp_path / "names")
    assert names and all("_s8_mve" in name for name in names), names
    check_firmware_equals_reference(graph, M55, tmp_path, seed)


def _accumulators(graph, node, x: np.ndarray) -> np.ndarray:
    """The int32 sums of depthwise ``node`` (multiplier 1) on int8 input x [1, H, W, C], bias included."""
    p = mac_int8_params(node, graph, x.shape[3])
    weight = graph.tensors[node.inputs[1]].data.astype(np.int64)
    a = node.attrs
    out_hw = graph.tensors[node.outputs[0]].shape[1:3]
    cols = windows(pad_hw(x.astype(np.int64) + p.input_offset, a.padding), weight.shape[1:3], a.stride, a.dilation,
                   out_hw)
    return np.einsum("hwijc,ijc->hwc", cols, weight[0]) + graph.tensors[node.inputs[2]].data


def tie_count(graph, seed) -> int:
    """How many outputs of the first layer of :func:`negative_ties`, on the firmware test's inputs, round
    a negative exact half: there TFLite's rounding (away from zero) and a plain rounding shift differ."""
    node = graph.nodes[0]
    p = mac_int8_params(node, graph, 5)
    inputs = np.random.default_rng(seed + 1000).integers(-128, 128, (3,) + graph.tensors["x"].shape, dtype=np.int8)
    ties = 0
    for x in inputs:
        acc = _accumulators(graph, node, x)
        high = saturating_rounding_doubling_high_mul(acc, p.multiplier)
        right = np.maximum(-p.shift, 0)
        exact = multiply_by_quantized_multiplier(acc, p.multiplier, p.shift)
        half_up = (high + (1 << right >> 1)) >> right
        ties += int(np.sum((exact != half_up) & (high < 0)))
        assert np.array_equal(run_graph(graph, [x], mode="int8", keep_all=True)[node.outputs[0]], np.clip(
            exact + p.output_offset, p.act_min, p.act_max).astype(np.int8)[np.newaxis])
    return ties


def test_the_tie_case_has_negative_ties():
    """The firmware test of :func:`negative_ties` can fail: a rounding shift without the fix-up would
    give other bytes on dozens of its outputs."""
    seed = 300 + CASES.index(negative_ties)
    assert tie_count(negative_ties(seed), seed) > 20


def test_block_filter_layout():
    """Channel blocks of 4, taps in order inside a block, the last block zero-padded."""
    weight = np.arange(2 * 3 * 6, dtype=np.int8).reshape(1, 2, 3, 6)  # tap t, channel c -> 6 t + c
    blocks = block_filter(weight)
    assert blocks.shape == (2, 6, 4)
    assert blocks[0, 5].tolist() == [30, 31, 32, 33]
    assert blocks[1, 2].tolist() == [16, 17, 0, 0]


def test_in_place_helium_depthwise_is_bit_exact_in_qemu(tmp_path):
    """Depthwise layers that the memory plan writes over their own input (SAME stride 1, then stride 2
    on an odd and on an even input) run the Helium kernel, whose ring copies each channel block's input
    rows before the outputs overwrite them, and stay exact."""
    seed = 310
    b = Builder(seed, (1, 9, 11, 13))
    y = b.depthwise("x", (3, 3), padding=same((9, 11), (3, 3), (1, 1)), activation="relu6")
    y = b.depthwise(y, (3, 3), stride=(2, 2), padding=same((9, 11), (3, 3), (2, 2)))
    graph = b.finish(b.depthwise(y, (3, 3), stride=(2, 2), padding=same((5, 6), (3, 3), (2, 2))))
    target = load_target(M55)
    plan = plan_memory(graph, inplace_depthwise=True)
    assert sum(alias.in_place for alias in plan.aliases.values()) == len(graph.nodes)
    program = emit_program(graph, plan, target, tmp_path / "src")
    assert [step.variant for step in program.plan.steps] == ["mve"] * len(graph.nodes)
    firmware = build_firmware(tmp_path / "src", target, tmp_path / "build")
    inputs = np.random.default_rng(seed).integers(-128, 128, (2,) + graph.tensors["x"].shape, dtype=np.int8)
    y = graph.tensors[graph.outputs[0]]
    result = run_firmware(firmware, target, inputs.reshape(2, -1), y.nbytes, timeout_s=60)
    assert result.ok, result.exit_reason + result.console
    for x, got in zip(inputs, result.outputs):
        expected = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
        assert len(np.unique(expected)) > 3
        assert np.array_equal(got.reshape(y.shape), expected)


@pytest.mark.parametrize("narrow", [False, True])
def test_kernel_cross_compiles_to_helium_without_warnings(narrow, tmp_path):
    """Every requantization form and clamp compiles for cortex-m55 without warnings, to Helium
    multiplies and VQRDMULH; the narrow form (every layer of the benchmark models) spills no vector
    register."""
    for name, header in ((mac_dsp.HEADER_NAME, mac_dsp.HEADER_TEXT), (HEADER_NAME, HEADER_TEXT)):
        (tmp_path / name).write_text(header)
    flags = list(load_target(M55).cpu_flags)
    spec = DepthwiseConv2dSpec((10, 14, 21), 1, Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)))
    for clamp in mac_dsp.CLAMPS:
        kernel = depthwise_conv2d_mve_kernel(spec, narrow=narrow, clamp=clamp)
        source = tmp_path / f"{kernel.name}.c"
        source.write_text(kernel.c_code)
        assembly = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *flags, *WARNINGS, "-Werror", "-S", "-o", "-",
                                   str(source)], check=True, capture_output=True, text=True).stdout
        assert "vmul.i32" in assembly and "vqrdmulh.s32" in assembly, kernel.name
        if narrow:  # the kernel stores bytes only: a VSTRW spills a vector (the general form may spill one)
            assert "vstrw" not in assembly, kernel.name
