"""The softmax, mean, pad and transpose kernels, emitted by edgekit's code generator into real firmware
(arm-none-eabi-gcc), run in the real QEMU, equal the integer reference interpreter byte for byte.

Same harness as test_kernels_qemu.py: a seeded one-node int8 graph with random activation
quantization (softmax's output is TFLite's fixed 1/256, -128), planned and emitted for cortex-m7.
"""

import pytest
from test_kernels_qemu import Builder, check_firmware_equals_reference

from edgekit.ir.tensor import QuantParams
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.pad import PadAttrs
from edgekit.ops.softmax import OUTPUT_SCALE, OUTPUT_ZERO_POINT, SoftmaxAttrs
from edgekit.ops.transpose import TransposeAttrs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]


def softmax_rows(seed):
    """Three rows of twelve; a coarse input scale so the rows are neither flat nor one-hot."""
    b = Builder(seed, (1, 3, 12))
    b.graph.tensors["x"].quant = QuantParams.per_tensor(0.04, int(b.rng.integers(-20, 20)))
    out_quant = QuantParams.per_tensor(OUTPUT_SCALE, OUTPUT_ZERO_POINT)
    return b.finish(b.node("softmax", ["x"], (1, 3, 12), SoftmaxAttrs(1.0), out_quant))


def mean_spatial(seed):
    """Output scale a quarter of the input's (means of random bytes spread little), zero point centred."""
    b = Builder(seed, (1, 5, 4, 6))
    input_zero_point = int(b.rng.integers(-20, 20))
    b.graph.tensors["x"].quant = QuantParams.per_tensor(0.02, input_zero_point)
    out_quant = QuantParams.per_tensor(0.02 / 4, input_zero_point * 4)
    return b.finish(b.node("mean", ["x"], (1, 1, 1, 6), MeanAttrs((1, 2), True), out_quant))


def pad_spatial(seed):
    b = Builder(seed, (1, 5, 6, 3))
    pads = ((0, 0), (1, 2), (2, 0), (0, 1))
    return b.finish(b.node("pad", ["x"], (1, 8, 8, 4), PadAttrs(pads), b.quant("x")))


def transpose_nchw_to_nhwc(seed):
    b = Builder(seed, (1, 3, 5, 4))
    return b.finish(b.node("transpose", ["x"], (1, 5, 4, 3), TransposeAttrs((0, 2, 3, 1)), b.quant("x")))


CASES = [softmax_rows, mean_spatial, pad_spatial, transpose_nchw_to_nhwc]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_kernel_firmware_is_bit_exact_on_cortex_m7(case, tmp_path):
    seed = 100 + CASES.index(case)
    check_firmware_equals_reference(case(seed), "cortex-m7", tmp_path, seed)
