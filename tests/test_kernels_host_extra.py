"""softmax, mean, pad and transpose TVM kernels, built with the host gcc and called through ctypes, are
bit-exact with the int8 references in edgekit.ops (softmax and mean through the same parameter
functions the interpreter and the code generator use); the gemmlowp exp and reciprocal TE helpers
equal their NumPy versions on edge values; and the kernels cross-compile cleanly for Cortex-M7."""

import shutil
import zlib

import numpy as np
import pytest
from test_kernels_host import _call, _compile, _int8, cross_compile_for_cortex_m7
from tvm import te

from edgekit.codegen.kernels.fixed_point import exp_on_negative_values, get_reciprocal
from edgekit.codegen.kernels.kernel_source import build_kernel
from edgekit.codegen.kernels.mean import MeanSpec, mean_kernel
from edgekit.codegen.kernels.pad import PadSpec, pad_kernel
from edgekit.codegen.kernels.scalar_stages import ScalarStages
from edgekit.codegen.kernels.softmax import SoftmaxSpec, softmax_kernel
from edgekit.codegen.kernels.transpose import TransposeSpec, transpose_kernel
from edgekit.ir.graph import Graph, Node
from edgekit.ir.tensor import QuantParams, Tensor
from edgekit.ops.mean import fold_count, sum_int8
from edgekit.ops.softmax import OUTPUT_SCALE, OUTPUT_ZERO_POINT, SoftmaxAttrs, softmax_int8, softmax_int8_params
from edgekit import fixedpoint
from edgekit.fixedpoint import quantize_multiplier

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _softmax_params(shape, input_scale: float, input_zero_point: int, beta: float):
    """SoftmaxInt8Params of a one-node graph, as the interpreter and layer_calls compute them."""
    graph = Graph(name="softmax")
    graph.add_tensor(Tensor("x", shape, "int8", quant=QuantParams.per_tensor(input_scale, input_zero_point)))
    graph.add_tensor(Tensor("y", shape, "int8", quant=QuantParams.per_tensor(OUTPUT_SCALE, OUTPUT_ZERO_POINT)))
    node = Node("softmax", "softmax", ["x"], ["y"], SoftmaxAttrs(beta))
    return softmax_int8_params(node, graph)


SOFTMAX_CASES = [  # (rows, depth, input scale, beta)
    (1, 2, 0.0625, 1.0),  # VWW's two classes
    (1, 10, 0.2, 1.0),
    (1, 12, 0.1, 1.0),
    (7, 10, 0.0625, 1.0),
    (16, 5, 0.01, 1.0),  # differences all tiny: flat rows
    (9, 33, 1.3, 1.0),  # most differences below diff_min: exactly -128
    (5, 17, 0.1, 0.5),
    (3, 100, 0.05, 2.0),
    (4, 1, 0.1, 1.0),  # one class: always 127
]


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=lambda c: f"{c[0]}x{c[1]}_s{c[2]}_b{c[3]}")
def test_softmax_matches_reference(case, tmp_path):
    rows, depth, input_scale, beta = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    params = _softmax_params((rows, depth), input_scale, 3, beta)
    x = _int8(rng, (rows, depth))
    x[: max(1, rows // 3)] //= 16  # nearly flat rows
    if rows > 1:
        x[-1] = x[-1, 0]  # one row of equal values
    out = np.zeros_like(x)
    _call(_compile(softmax_kernel(SoftmaxSpec(rows, depth)), tmp_path), x, out, params.input_multiplier,
          params.input_left_shift, params.diff_min)
    want = softmax_int8(x, **params.__dict__)
    assert depth == 1 or ((want > -128) & (want < 127)).any(), "degenerate case: every output saturated"
    np.testing.assert_array_equal(out, want)


def _elementwise_int32_kernel(name, values_of, size, tmp_path):
    """A kernel mapping an int32 array through ``values_of(x_load, bind)``, intermediates as scalar stages."""
    x = te.placeholder((size,), "int32", name="x")
    stages = ScalarStages("t", (size,))
    value = values_of(x[stages.index[0]], stages.bind)
    out = te.compute((size,), lambda i: stages.at(value, (i,)), name="out")

    def schedule(sch):
        stages.compute_at(sch, sch.get_loops(sch.get_sblock("out"))[0])

    return _compile(build_kernel(name, size, [x, out], schedule, ("x",)), tmp_path)


def test_exp_on_negative_values_matches_numpy(tmp_path):
    """exp in Q5.26 over the whole non-positive int32 range: 0, -1, quarter boundaries, INT32_MIN, random."""
    edges = [0, -1, -2, -(1 << 24), -(1 << 24) - 1, -(1 << 24) + 1, -(1 << 26), -(1 << 30), INT32_MIN, INT32_MIN + 1]
    random = -np.random.default_rng(1).integers(0, 1 << 31, size=500)
    a = np.ascontiguousarray(np.concatenate([edges, random]), dtype=np.int32)
    function = _elementwise_int32_kernel("exp_test", lambda v, bind: exp_on_negative_values(v, 5, bind), a.size,
                                         tmp_path)
    got = np.zeros_like(a)
    _call(function, a, got)
    np.testing.assert_array_equal(got, fixedpoint.exp_on_negative_values(a, 5))


@pytest.mark.parametrize("part", [0, 1])
def test_get_reciprocal_matches_numpy(part, tmp_path):
    """1/x scale and exponent for Q12.19 sums from 1 to INT32_MAX (powers of two and their neighbours)."""
    powers = [1 << k for k in range(31)]
    edges = sorted({v for p in powers for v in (p - 1, p, p + 1) if 0 < v <= INT32_MAX} | {INT32_MAX, 524288})
    random = np.random.default_rng(2).integers(1, 1 << 31, size=300)
    x = np.ascontiguousarray(np.concatenate([edges, random]), dtype=np.int32)
    function = _elementwise_int32_kernel(f"reciprocal_test{part}",
                                         lambda v, bind: get_reciprocal(v, 12, bind)[part], x.size, tmp_path)
    got = np.zeros_like(x)
    _call(function, x, got)
    np.testing.assert_array_equal(got, fixedpoint.get_reciprocal(x, 12)[part])


MEAN_CASES = [  # (H, W, C, input scale / output scale)
    (3, 3, 256, 1.0),  # VWW's last feature map
    (8, 8, 64, 0.9),
    (25, 5, 64, 1.7),  # DS-CNN's
    (1, 1, 8, 1.0),
    (7, 6, 5, 3.5),  # left shift
    (2, 9, 3, 0.02),
]


@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: "x".join(map(str, c[:3])) + f"_r{c[3]}")
def test_mean_matches_reference(case, tmp_path):
    height, width, channels, ratio = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = _int8(rng, (1, height, width, channels))
    input_zero_point, output_zero_point = int(rng.integers(-128, 128)), int(rng.integers(-100, 100))
    multiplier, shift = quantize_multiplier(ratio)
    folded_multiplier, folded_shift = fold_count(multiplier, shift, height * width)
    out = np.zeros((1, channels), dtype=np.int8)
    _call(_compile(mean_kernel(MeanSpec((height, width, channels))), tmp_path), x, out, input_zero_point,
          output_zero_point, folded_multiplier, folded_shift)
    want = sum_int8(x, input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                    multiplier=folded_multiplier, shift=folded_shift, keep_dims=False)
    np.testing.assert_array_equal(out, want)


PAD_CASES = [  # (input shape, pads)
    ((1, 5, 6, 3), ((0, 0), (1, 1), (1, 1), (0, 0))),
    ((1, 7, 7, 4), ((0, 0), (0, 1), (0, 1), (0, 0))),  # TF "same" for stride 2, as a separate PAD
    ((1, 4, 3, 2), ((0, 0), (3, 2), (0, 4), (1, 2))),  # channels too
    ((2, 3, 5), ((1, 0), (2, 2), (0, 3))),
    ((6, 4), ((0, 0), (5, 1))),
]


@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_pad_matches_reference(case, tmp_path):
    shape, pads = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    spec = PadSpec(shape, pads)
    x = _int8(rng, shape)
    zero_point = int(rng.integers(-128, 128))
    out = np.zeros(spec.output_shape, dtype=np.int8)
    _call(_compile(pad_kernel(spec), tmp_path), x, out, zero_point)
    np.testing.assert_array_equal(out, np.pad(x, pads, constant_values=zero_point))


TRANSPOSE_CASES = [  # (input shape, perm)
    ((1, 3, 8, 7), (0, 2, 3, 1)),  # NCHW -> NHWC
    ((1, 8, 7, 3), (0, 3, 1, 2)),  # NHWC -> NCHW
    ((2, 3, 4, 5), (3, 1, 0, 2)),
    ((4, 5, 6), (2, 0, 1)),
    ((9, 13), (1, 0)),
    ((1, 2, 3, 4, 5), (0, 4, 2, 3, 1)),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES,
                         ids=lambda c: "x".join(map(str, c[0])) + "_" + "".join(map(str, c[1])))
def test_transpose_matches_reference(case, tmp_path):
    shape, perm = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    spec = TransposeSpec(shape, perm)
    x = _int8(rng, shape)
    out = np.zeros(spec.output_shape, dtype=np.int8)
    _call(_compile(transpose_kernel(spec), tmp_path), x, out)
    np.testing.assert_array_equal(out, np.transpose(x, perm))


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="not a permutation"):
        transpose_kernel(TransposeSpec((2, 3), (0, 0)))
    with pytest.raises(ValueError, match="pairs"):
        pad_kernel(PadSpec((2, 3), ((1, 1),)))


CROSS_KERNELS = [
    lambda: softmax_kernel(SoftmaxSpec(1, 10)),
    lambda: mean_kernel(MeanSpec((3, 3, 256))),
    lambda: pad_kernel(PadSpec((1, 5, 6, 3), ((0, 0), (1, 1), (1, 1), (0, 0)))),
    lambda: transpose_kernel(TransposeSpec((1, 3, 8, 7), (0, 2, 3, 1))),
]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_kernels_cross_compile_for_cortex_m7_without_warnings(tmp_path):
    cross_compile_for_cortex_m7(CROSS_KERNELS, tmp_path)
