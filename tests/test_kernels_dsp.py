"""The DSP-extension kernels (edgekit/codegen/kernels/mac_dsp.py), built with the host gcc (SXTB16/SMLAD
emulated in C by ek_mac_dsp.h) and called through ctypes, are bit-exact with the NumPy int8 references
on the same shapes as the portable kernels, plus the shapes that exercise their blocking (odd pixel and
channel counts, K not a multiple of 4, borders); they cross-compile for Cortex-M4/M7/M55 with the real
SXTB16/SMLAD without warnings. (test_kernels_dsp_qemu.py runs them in QEMU.)"""

import ctypes
import shutil
import subprocess
import zlib

import numpy as np
import pytest
from test_kernels_host import (CONV_CASES, DEPTHWISE_CASES, WARNINGS, _call, _compile, _conv_case, _depthwise_case,
                               _depthwise_id, _int8, _reference_kwargs, _requant)

from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels.conv2d import Conv2dSpec
from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec
from edgekit.codegen.kernels.fully_connected import FullyConnectedSpec
from edgekit.codegen.kernels.variants import DSP, DSP_C4, PORTABLE, KernelChoice, candidate_variants, select_kernel
from edgekit.codegen.tir_to_c import COMPAT_HEADER_NAME, COMPAT_HEADER_TEXT
from edgekit.ops.conv2d import conv2d_int8
from edgekit.ops.depthwise_conv2d import depthwise_conv2d_int8
from edgekit.ops.fully_connected import fully_connected_int8
from edgekit.ops.window import Window
from edgekit import fixedpoint
from edgekit.fixedpoint import quantize_multipliers
from edgekit.target import load_target


def _compile_dsp(kernel, tmp_path):
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    return _compile(kernel, tmp_path)


def _dsp_call(make, tmp_path, x, filt, channel_axis, bias, q, out_shape):
    """Run the DSP kernel ``make(narrow, clamp)`` as the code generator calls it: folded bias (in the channel
    table of the narrow conv2d and fully connected kernels), scratch after the output, narrow requantization
    where the layer allows it, the clamp kind compiled in."""
    folded = mac_dsp.fold_input_offset(bias, filt, channel_axis, q["input_offset"])
    depth = filt.size // filt.shape[channel_axis]
    kernel = make(mac_dsp.narrow_accumulators(folded, q["shift"], depth),
                  mac_dsp.clamp_kind(q["act_min"], q["act_max"], q["output_offset"]))
    assert kernel.input_offset_in_bias
    weights = mac_dsp.widen_weights(filt, kernel.doubled_products) if kernel.weights_int16 else filt
    out = np.zeros(out_shape, dtype=np.int8)
    scratch = [np.zeros(kernel.scratch_bytes, dtype=np.int8)] if kernel.scratch_bytes else []
    requant = ([mac_dsp.channel_table(folded, q["mult"], q["shift"], kernel.doubled_products)]
               if "channels" in kernel.params
               else [folded, q["mult"], q["shift"]])
    _call(_compile_dsp(kernel, tmp_path), x, weights, *requant, out, *scratch, q["input_offset"],
          q["output_offset"], q["act_min"], q["act_max"])
    return out


def _narrowed(q, requant, seed):
    """``q`` for "general"; for "narrow", real scales below 1/2 (right shifts only), as conv layers have."""
    if requant == "general":
        return q
    rng = np.random.default_rng(seed)
    mult, shift = quantize_multipliers(2.0 ** rng.uniform(-16, -1.2, size=len(q["mult"])))
    return q | {"mult": mult, "shift": shift}


REQUANT = ["general", "narrow"]


DSP_CONV_CASES = CONV_CASES + [
    (7, 5, 13, 7, (1, 1), (1, 1), (1, 1), "valid"),  # odd pixels, odd channels, K = 13
    (4, 4, 64, 64, (1, 1), (1, 1), (1, 1), "valid"),  # DS-CNN's pointwise
    (6, 6, 3, 16, (3, 3), (2, 2), (1, 1), "same"),  # a first layer, K = 27
    (10, 4, 1, 8, (10, 4), (2, 2), (1, 1), "same"),  # DS-CNN's first layer
    (5, 5, 16, 9, (3, 3), (1, 1), (1, 1), "same"),  # K = 144
]


LEAN = pytest.mark.parametrize("lean", [False, True], ids=["widened", "lean"])


@LEAN
@pytest.mark.parametrize("requant", REQUANT)
@pytest.mark.parametrize("weights16", [False, True], ids=["w8", "w16"])
@pytest.mark.parametrize("case", DSP_CONV_CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"_k{c[4][0]}s{c[5][0]}")
def test_dsp_conv2d_matches_reference(case, weights16, requant, lean, tmp_path):
    """Inputs widened once into scratch, or (lean, patched schedules) widened in the loop: same outputs;
    the lean kernel's scratch is only the im2col."""
    spec, x, filt, bias, q, _ = _conv_case(case)
    q = _narrowed(q, requant, len(case))
    window = spec.window
    kernel = mac_dsp.conv2d_dsp_kernel(spec, weights16, lean=lean)
    depth = window.kernel[0] * window.kernel[1] * spec.input_shape[2]
    direct = window.kernel == (1, 1) and window.stride == (1, 1) and not any(window.padding)
    assert not lean or kernel.scratch_bytes == (0 if direct else 2 * depth)

    def make(narrow, clamp):
        return mac_dsp.conv2d_dsp_kernel(spec, weights16, narrow, clamp=clamp, lean=lean)

    got = _dsp_call(make, tmp_path, x, filt, 0, bias, q, (1, *spec.output_shape))
    want = conv2d_int8(x, filt, bias, q["mult"], q["shift"], stride=window.stride, dilation=window.dilation,
                       padding=window.padding, **_reference_kwargs(q))
    np.testing.assert_array_equal(got, want)


DSP_DEPTHWISE_CASES = [c for c in DEPTHWISE_CASES if c[3] == 1] + [
    (7, 9, 5, 1, (3, 3), (1, 1), (1, 1), "valid"),  # no border
    (3, 3, 4, 1, (3, 3), (2, 2), (1, 1), "same"),  # no interior pixel
    (12, 12, 16, 1, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),  # TFLite's stride-2 "same"
]


C4_DEPTHWISE_CASES = [c for c in DSP_DEPTHWISE_CASES if mac_dsp.depthwise_c4_supported(_depthwise_case(c)[0])] + [
    (5, 7, 1, 1, (3, 3), (1, 1), (1, 1), "same"),  # one channel: a group of 1
    (6, 5, 7, 1, (3, 3), (1, 1), (1, 1), "same"),  # a group of 4, then of 3; odd width
    (7, 8, 6, 1, (3, 3), (2, 2), (1, 1), "same"),  # then of 2
    (8, 9, 9, 1, (3, 3), (2, 2), (1, 1), "valid"),  # then of 1; the input's last column unread
    (4, 3, 8, 1, (3, 3), (1, 1), (1, 1), (2, 1, 0, 2)),  # uneven padding, a padding row
]
DEPTHWISE_FORMS = ([(case, form) for case in DSP_DEPTHWISE_CASES for form in ("plane", "lean")]
                   + [(case, "c4") for case in C4_DEPTHWISE_CASES])


@pytest.mark.parametrize("requant", REQUANT)
@pytest.mark.parametrize("case,form", DEPTHWISE_FORMS,
                         ids=lambda value: value if isinstance(value, str) else _depthwise_id(value))
def test_dsp_depthwise_conv2d_matches_reference(case, form, requant, tmp_path):
    """The whole-plane kernel, the row-window one (lean, patched schedules) and the four-channels-at-a-time
    one (c4: 3x3 stride 1 and 2, a last group of 1-3 channels) compute the same outputs."""
    spec, x, filt, bias, q, _ = _depthwise_case(case)
    q = _narrowed(q, requant, len(case))
    window = spec.window
    want = depthwise_conv2d_int8(x, filt, bias, q["mult"], q["shift"], stride=window.stride, dilation=window.dilation,
                                 padding=window.padding, depth_multiplier=1, **_reference_kwargs(q))

    def make(narrow, clamp):
        if form == "c4":
            return mac_dsp.depthwise_conv2d_c4_kernel(spec, narrow, clamp)
        return mac_dsp.depthwise_conv2d_dsp_kernel(spec, narrow, clamp, form == "lean")

    got = _dsp_call(make, tmp_path, x, filt, 3, bias, q, want.shape)
    np.testing.assert_array_equal(got, want)


@LEAN
@pytest.mark.parametrize("requant", REQUANT)
@pytest.mark.parametrize("weights16", [False, True], ids=["w8", "w16"])
@pytest.mark.parametrize("in_features,out_features", [(1, 1), (10, 4), (64, 10), (37, 13), (256, 3)])
def test_dsp_fully_connected_matches_reference(in_features, out_features, weights16, requant, lean, tmp_path):
    rng = np.random.default_rng(in_features * 1000 + out_features)
    x = _int8(rng, (1, in_features))
    filt = _int8(rng, (out_features, in_features))
    bias = rng.integers(-5000, 5000, size=out_features, dtype=np.int32)
    q = _narrowed(_requant(rng, out_features), requant, in_features)
    spec = FullyConnectedSpec(in_features, out_features)
    assert not lean or mac_dsp.fully_connected_dsp_kernel(spec, weights16, lean=True).scratch_bytes == 0

    def make(narrow, clamp):
        return mac_dsp.fully_connected_dsp_kernel(spec, weights16, narrow, clamp=clamp, lean=lean)

    got = _dsp_call(make, tmp_path, x, filt, 0, bias, q, (1, out_features))
    want = fully_connected_int8(x, filt, bias, q["mult"], q["shift"], **_reference_kwargs(q))
    np.testing.assert_array_equal(got, want)


def _host_function(tmp_path, name: str, source: str, scalars: int):
    """C function ``name`` of ``source`` (which includes ek_mac_dsp.h) built with the host gcc: four array
    arguments, then ``scalars`` int32 ones."""
    (tmp_path / f"{name}.c").write_text(source)
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    library = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-std=c99", "-O2", *WARNINGS, "-shared", "-fPIC", "-o", str(library),
                    str(tmp_path / f"{name}.c")], check=True)
    function = getattr(ctypes.CDLL(str(library)), name)
    function.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int32] * scalars
    return function


def _requantize_on_host(tmp_path, narrow: bool, x, mult, shift) -> np.ndarray:
    """ek_requantize (output offset 0, no clamp) of every (x, mult, shift), built with the host gcc."""
    function = _host_function(tmp_path, "requantize_all", f'#define EK_NARROW_ACC {int(narrow)}\n'
                              f'#include "{mac_dsp.HEADER_NAME}"\n'
                              "void requantize_all(const int32_t *x, const int32_t *m, const int32_t *s, int8_t *out, "
                              "int32_t n) { for (int32_t i = 0; i < n; ++i) "
                              "out[i] = ek_requantize(x[i], m[i], s[i], 0, -128, 127); }\n", 1)
    got = np.zeros(x.size, dtype=np.int8)
    function(*(a.ctypes.data_as(ctypes.c_void_p) for a in (x, mult, shift, got)), x.size)
    return got


def _grid(values, multipliers, shifts):
    grid = np.array(np.meshgrid(values, multipliers, shifts)).reshape(3, -1)
    return tuple(np.ascontiguousarray(row, dtype=np.int32) for row in grid)


def test_requantization_matches_numpy_on_edge_values(tmp_path):
    """ek_requantize (one rounding of the int64 product) equals TFLite's double rounding, clamp included,
    on INT32 extremes, ties and shifts from -31 to +30 (output offset 0: adding one to a rescaled
    INT32_MAX overflows int32 in C and TFLite alike, not in NumPy)."""
    int32 = np.iinfo(np.int32)
    values = [int32.min, int32.min + 1, -(1 << 30), -(1 << 29) - 1, -3, -2, -1, 0, 1, 2, 3, 1 << 30, int32.max]
    x, mult, shift = _grid(values, [0, 1, 1 << 30, (1 << 30) + 12345, int32.max], range(-31, 31))
    np.testing.assert_array_equal(_requantize_on_host(tmp_path, False, x, mult, shift),
                                  fixedpoint.requantize(x, mult, shift, 0))


def test_narrow_requantization_matches_numpy_within_its_bounds(tmp_path):
    """The narrow form (SMMULR, one rounding shift) equals TFLite's double rounding for accumulators within
    +-2^30 and right shifts from 1 to 31, ties and extremes included; the check that grants it is strict."""
    edges = [-(1 << 30) + 1, -(1 << 29) - 1, -(1 << 20), -769, -3, -2, -1, 0, 1, 2, 3, 768, 1 << 20, (1 << 30) - 1]
    ties = [k << r for r in range(1, 12) for k in (-3, -1, 1, 3)]
    x, mult, shift = _grid(edges + ties, [0, 1, 1 << 30, (1 << 30) + 12345, np.iinfo(np.int32).max], range(-31, 0))
    np.testing.assert_array_equal(_requantize_on_host(tmp_path, True, x, mult, shift),
                                  fixedpoint.requantize(x, mult, shift, 0))
    assert mac_dsp.narrow_accumulators(np.array([1000]), np.array([-1, -5]), 64)
    assert not mac_dsp.narrow_accumulators(np.array([1000]), np.array([0, -5]), 64)
    assert not mac_dsp.narrow_accumulators(np.array([(1 << 30) - 64 * 128 * 127]), np.array([-5]), 64)


GEMM_CLAMPS = {"full": ("-128", -128), "upper": ("act_min", -3), "relu": ("output_offset", None)}


@pytest.mark.parametrize("zero_point", [-128, -7, 0, 100])
@pytest.mark.parametrize("kind", list(GEMM_CLAMPS))
def test_gemm_output_matches_numpy_for_each_clamp_kind(kind, zero_point, tmp_path):
    """ek_gemm_output (conv2d and fully connected, narrow accumulators): the output offset folded into the last
    halving, one SSAT, and for "relu" (lower clamp at the zero point) no sign correction, equals TFLite's
    double rounding, offset and clamp, on ties, extremes and right shifts from 1 to 31."""
    act_min_c, act_min = GEMM_CLAMPS[kind]
    act_min = zero_point if act_min is None else act_min
    function = _host_function(
        tmp_path, "output_all",
        f'#define EK_NARROW_ACC 1\n#define EK_RELU {int(kind == "relu")}\n#include "{mac_dsp.HEADER_NAME}"\n'
        "void output_all(const int32_t *x, const int32_t *m, const int32_t *s, int8_t *out, int32_t n,"
        " int32_t output_offset, int32_t act_min)\n"
        f"{{ const ek_clamp_t clamp = {{output_offset, {act_min_c}, 127}}; (void)act_min;\n"
        "  for (int32_t i = 0; i < n; ++i) out[i] = ek_gemm_output(x[i], ek_scale(m[i], s[i]), clamp); }\n", 3)
    edges = [-(1 << 30) + 1, -(1 << 20), -769, -3, -2, -1, 0, 1, 2, 3, 768, 1 << 20, (1 << 30) - 1]
    ties = [k << r for r in range(1, 12) for k in (-3, -1, 1, 3)] + [(k << r) - 1 for r in range(1, 12) for k in (-1, 1)]
    x, mult, shift = _grid(edges + ties, [0, 1, 1 << 30, (1 << 30) + 12345, np.iinfo(np.int32).max], range(-31, 0))
    got = np.zeros(x.size, dtype=np.int8)
    function(*(a.ctypes.data_as(ctypes.c_void_p) for a in (x, mult, shift, got)), x.size, zero_point, act_min)
    np.testing.assert_array_equal(got, fixedpoint.requantize(x, mult, shift, zero_point, act_min, 127))


def test_fold_input_offset_wraps_like_int32():
    weight = np.full((2, 3), 127, dtype=np.int8)
    bias = np.array([np.iinfo(np.int32).max, -7], dtype=np.int32)
    folded = mac_dsp.fold_input_offset(bias, weight, 0, 128)
    assert folded[1] == -7 + 128 * 381
    assert folded[0] == np.int32(np.int64(np.iinfo(np.int32).max) + 128 * 381 - (1 << 32))


def test_clamp_kinds_compile_in_only_what_the_layer_guarantees():
    """(act_min, act_max, output zero point): a ReLU's lower bound is the zero point."""
    assert [mac_dsp.clamp_kind(*bounds) for bounds in [(-128, 127, 3), (-5, 127, 3), (-5, 127, -5), (-128, 100, 0),
                                                        (0, 6, 0)]] == ["full", "upper", "relu", "any", "any"]
    spec = FullyConnectedSpec(8, 2)
    names = {mac_dsp.fully_connected_dsp_kernel(spec, clamp=kind).name for kind in mac_dsp.CLAMPS}
    assert len(names) == 4  # a kernel per kind: the kind is part of the name and the cache key
    with pytest.raises(ValueError, match="clamp kind"):
        mac_dsp.fully_connected_dsp_kernel(spec, clamp="relu6")


def test_channel_table_pairs_bias_multiplier_and_shift():
    table = mac_dsp.channel_table(np.array([5, -6, 7]), np.array([100, 200, 300]), np.array([-1, -4, -31]))
    np.testing.assert_array_equal(table, [5, -6, 100, 200, 0, 3, 7, 0, 300, 0, 30, 0])
    spec = FullyConnectedSpec(8, 3)
    assert "channels" in mac_dsp.fully_connected_dsp_kernel(spec, narrow=True).params
    assert "channels" not in mac_dsp.fully_connected_dsp_kernel(spec, narrow=False).params
    # int16 weights and a narrow requantization: weights and bias doubled, the accumulator comes out doubled
    assert mac_dsp.fully_connected_dsp_kernel(spec, weights16=True, narrow=True).doubled_products
    assert not mac_dsp.fully_connected_dsp_kernel(spec, weights16=True, narrow=False).doubled_products
    assert not mac_dsp.fully_connected_dsp_kernel(spec, narrow=True).doubled_products
    np.testing.assert_array_equal(mac_dsp.channel_table(np.array([5]), np.array([100]), np.array([-2]), doubled=True),
                                  [10, 0, 100, 0, 1, 0])
    np.testing.assert_array_equal(mac_dsp.widen_weights(np.array([[-128, 1, 2]], dtype=np.int8), doubled=True),
                                  [[-256, 2, 4, 0]])


def test_widened_weights_are_in_smlad_order_and_padded():
    weight = np.arange(1, 7, dtype=np.int8).reshape(1, 6)  # K = 6: one group of 4, a tail of 2
    np.testing.assert_array_equal(mac_dsp.widen_weights(weight), [[1, 3, 2, 4, 5, 6, 0, 0]])


def test_widened_weights_interleave_channel_pairs_group_by_group():
    weight = np.array([[1, 2, 3, 4, 5], [11, 12, 13, 14, 15], [21, 22, 23, 24, 25]], dtype=np.int8)
    np.testing.assert_array_equal(mac_dsp.widen_weights(weight).ravel(), [
        1, 3, 2, 4, 11, 13, 12, 14, 5, 0, 0, 0, 15, 0, 0, 0,  # channels 0 and 1, group by group
        21, 23, 22, 24, 25, 0, 0, 0])  # the odd last channel, plain


def test_target_features_choose_the_variant():
    """DSP targets get the DSP kernels (int16 weights first); a target without DSP, and unsupported specs,
    get the portable one."""
    m7 = load_target("cortex-m7")
    conv = Conv2dSpec((6, 6, 8), 8, Window())
    assert select_kernel("conv2d", conv, m7).name.startswith("ek_conv2d_s8_dsp_w16_")
    assert candidate_variants("conv2d", conv, m7, wide_weights=False) == [DSP, PORTABLE]
    assert select_kernel("conv2d", conv, m7, PORTABLE).name.startswith("ek_conv2d_s8_tvm_")
    no_dsp = type(m7)(**{**m7.__dict__, "dsp": False})
    assert candidate_variants("conv2d", conv, no_dsp) == [PORTABLE]
    with pytest.raises(ValueError, match="cannot run"):
        select_kernel("conv2d", conv, no_dsp, DSP)
    multiplier2 = DepthwiseConv2dSpec((6, 6, 4), 2, Window((3, 3)))
    assert candidate_variants("depthwise_conv2d", multiplier2, m7) == [PORTABLE]


def test_depthwise_3x3_gets_four_channels_at_a_time_except_in_lean_schedules():
    """dsp_c4 runs 3x3 stride 1 and 2, by default at stride 2 and where stride-1 rows have 5 pixels or more
    (--tune tries it on narrower ones); other windows keep the channel-by-channel kernel, and so do the
    scratch-lean (memory-minimising) schedules, whose row window of one channel is smaller."""
    m7 = load_target("cortex-m7")
    stride2 = DepthwiseConv2dSpec((9, 12, 6), 1, Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)))
    assert candidate_variants("depthwise_conv2d", stride2, m7) == [DSP_C4, DSP, PORTABLE]
    assert KernelChoice(m7).kernel("depthwise_conv2d", stride2).variant == DSP_C4
    lean = KernelChoice(m7, lean=True)
    assert lean.variants("depthwise_conv2d", stride2) == [DSP, PORTABLE]
    assert lean.kernel("depthwise_conv2d", stride2).scratch_bytes < mac_dsp.depthwise_c4_scratch_bytes(stride2)
    narrow = DepthwiseConv2dSpec((4, 4, 64), 1, Window((3, 3), padding=(1, 1, 1, 1)))  # 4 pixels a row
    assert candidate_variants("depthwise_conv2d", narrow, m7) == [DSP, PORTABLE, DSP_C4]
    narrow_stride2 = DepthwiseConv2dSpec((6, 6, 8), 1, Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)))
    assert candidate_variants("depthwise_conv2d", narrow_stride2, m7)[0] == DSP_C4
    for window in (Window((5, 5)), Window((3, 3), (3, 3)), Window((3, 3), dilation=(2, 2)), Window((3, 3), (1, 2))):
        spec = DepthwiseConv2dSpec((9, 9, 6), 1, window)
        assert candidate_variants("depthwise_conv2d", spec, m7) == [DSP, PORTABLE]
        with pytest.raises(ValueError, match="dsp_c4"):
            mac_dsp.depthwise_conv2d_c4_kernel(spec)


CROSS_KERNELS = [
    lambda: mac_dsp.conv2d_dsp_kernel(Conv2dSpec((9, 9, 3), 5, Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)))),
    lambda: mac_dsp.conv2d_dsp_kernel(Conv2dSpec((8, 8, 16), 24, Window())),
    lambda: mac_dsp.depthwise_conv2d_dsp_kernel(DepthwiseConv2dSpec((8, 8, 3), 1, Window((3, 3), padding=(1, 1, 1, 1)))),
    lambda: mac_dsp.depthwise_conv2d_c4_kernel(DepthwiseConv2dSpec((8, 8, 7), 1, Window((3, 3), padding=(1, 1, 1, 1))),
                                               True, "full"),
    lambda: mac_dsp.depthwise_conv2d_c4_kernel(DepthwiseConv2dSpec((9, 8, 6), 1, Window((3, 3), (2, 2), (1, 1),
                                                                                       (0, 0, 1, 1))), False, "upper"),
    lambda: mac_dsp.fully_connected_dsp_kernel(FullyConnectedSpec(64, 10)),
    lambda: mac_dsp.conv2d_dsp_kernel(Conv2dSpec((8, 8, 16), 24, Window((3, 3), padding=(1, 1, 1, 1))), True),
    lambda: mac_dsp.fully_connected_dsp_kernel(FullyConnectedSpec(37, 10), True),
]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7", "cortex-m55"])
def test_dsp_kernels_cross_compile_without_warnings(cpu, tmp_path):
    """Cross-compiled with the target's flags, the kernels use SMLAD (the intrinsics, not the C emulation)."""
    (tmp_path / COMPAT_HEADER_NAME).write_text(COMPAT_HEADER_TEXT)
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    flags = list(load_target(cpu).cpu_flags)
    for make in CROSS_KERNELS:
        kernel = make()
        source = tmp_path / f"{kernel.name}.c"
        source.write_text(kernel.c_code)
        assembly = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *flags, *WARNINGS, "-S", "-o", "-",
                                   str(source)], check=True, capture_output=True, text=True).stdout
        if "depthwise" not in kernel.name or "_dsp_c4_" in kernel.name:
            assert "smlad" in assembly, kernel.name


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_mve_kernels_cross_compile_to_helium_without_warnings(tmp_path):
    """The Helium variant compiles for cortex-m55 with VMLADAVA dot products (QEMU runs it:
    test_kernels_dsp_qemu.py); the host has no MVE, so it has no host test."""
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    flags = list(load_target("cortex-m55").cpu_flags)
    for kernel in (mac_dsp.conv2d_dsp_kernel(Conv2dSpec((5, 7, 13), 9, Window()), mve=True),
                   mac_dsp.fully_connected_dsp_kernel(FullyConnectedSpec(37, 10), mve=True)):
        source = tmp_path / f"{kernel.name}.c"
        source.write_text(kernel.c_code)
        assembly = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *flags, *WARNINGS, "-S", "-o", "-",
                                   str(source)], check=True, capture_output=True, text=True).stdout
        assert "vmladava" in assembly, kernel.name
