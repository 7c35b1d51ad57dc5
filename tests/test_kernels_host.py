"""The TVM-generated C kernels, built with the host gcc and called through ctypes, are bit-exact with
the NumPy int8 references in edgekit.ops on random shapes and parameters; they also cross-compile
cleanly for Cortex-M7."""

import ctypes
import dataclasses
import shutil
import subprocess
import zlib

import numpy as np
import pytest
from tvm import te

from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels.add import AddSpec, add_kernel
from edgekit.codegen.kernels.conv2d import Conv2dSpec, conv2d_kernel
from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec, depthwise_conv2d_kernel
from edgekit.codegen.kernels.fixed_point import multiply_by_quantized_multiplier
from edgekit.codegen.kernels.fully_connected import FullyConnectedSpec, fully_connected_kernel
from edgekit.codegen.kernels.kernel_source import build_kernel
from edgekit.codegen.kernels.pool2d import Pool2dSpec, avg_pool2d_kernel, max_pool2d_kernel
from edgekit.codegen.kernels.variants import KernelChoice
from edgekit.codegen.tir_to_c import COMPAT_HEADER_NAME, COMPAT_HEADER_TEXT
from edgekit import fixedpoint
from edgekit.fixedpoint import quantize_multiplier, quantize_multipliers
from edgekit.ir import Graph, Node, QuantParams, Tensor
from edgekit.ir.interpreter import run_graph
from edgekit.ops import get_op
from edgekit.ops.add import add_int8
from edgekit.ops.conv2d import conv2d_int8
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs, depthwise_conv2d_int8
from edgekit.ops.fully_connected import fully_connected_int8
from edgekit.ops.pool2d import avg_pool2d_int8, max_pool2d_int8
from edgekit.ops.window import Window, same_padding
from edgekit.target import load_target

WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def _compile(kernel, tmp_path):
    """The kernel as a ctypes function: every pointer argument is c_void_p, every scalar int32 or float."""
    (tmp_path / COMPAT_HEADER_NAME).write_text(COMPAT_HEADER_TEXT)
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)  # the C kernels' (add) header
    source = tmp_path / f"{kernel.name}.c"
    source.write_text(kernel.c_code)
    library = tmp_path / f"{kernel.name}.so"
    subprocess.run(["gcc", "-std=c99", "-O2", *WARNINGS, "-shared", "-fPIC", "-o", str(library), str(source)],
                   check=True)
    function = getattr(ctypes.CDLL(str(library)), kernel.name)
    function.argtypes = [ctypes.c_void_p if "*" in p else ctypes.c_float if p.startswith("float ") else ctypes.c_int32
                         for p in _params(kernel.prototype)]
    function.restype = ctypes.c_int32
    return function


def _params(prototype: str) -> list[str]:
    return prototype[prototype.index("(") + 1:-1].split(", ")


def _call(function, *args) -> None:
    converted = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray) else
                 float(a) if isinstance(a, (float, np.floating)) else int(a) for a in args]
    assert function(*converted) == 0


def _int8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _padding(mode, in_hw, kernel, stride, dilation=(1, 1)):
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode == "same":
        top, bottom = same_padding(in_hw[0], kernel[0], stride[0], dilation[0])
        left, right = same_padding(in_hw[1], kernel[1], stride[1], dilation[1])
        return (top, left, bottom, right)
    return mode  # explicit (top, left, bottom, right)


def _requant(rng, channels):
    """Per-channel multipliers spanning right shifts (real < 1) and left shifts (real > 1), random offsets, clamp."""
    mult, shift = quantize_multipliers(2.0 ** rng.uniform(-16, 2.5, size=channels))
    out_zero_point = int(rng.integers(-128, 128))
    clamp = [(-128, 127), (out_zero_point, 127), (out_zero_point, min(127, out_zero_point + 60))][rng.integers(3)]
    return dict(mult=mult, shift=shift, input_offset=-int(rng.integers(-128, 128)), output_offset=out_zero_point,
                act_min=clamp[0], act_max=clamp[1])


def _mac_call(function, x, filt, bias, q, out_shape):
    out = np.zeros(out_shape, dtype=np.int8)
    _call(function, x, filt, bias, q["mult"], q["shift"], out, q["input_offset"], q["output_offset"],
          q["act_min"], q["act_max"])
    return out


def _reference_kwargs(q):
    return {k: q[k] for k in ("input_offset", "output_offset", "act_min", "act_max")}


CONV_CASES = [  # (H, W, Cin, Cout, kernel, stride, dilation, padding)
    (5, 5, 3, 4, (1, 1), (1, 1), (1, 1), "valid"),
    (8, 7, 4, 6, (3, 3), (1, 1), (1, 1), "same"),
    (9, 9, 3, 5, (3, 3), (2, 2), (1, 1), "same"),
    (8, 8, 2, 3, (3, 3), (2, 2), (1, 1), "valid"),
    (10, 9, 3, 4, (5, 5), (1, 1), (1, 1), "same"),
    (12, 11, 2, 3, (7, 7), (2, 2), (1, 1), "same"),
    (9, 9, 3, 2, (3, 3), (1, 1), (2, 2), "same"),
    (7, 8, 5, 4, (3, 2), (2, 1), (1, 1), (1, 0, 2, 1)),
    (6, 6, 16, 8, (1, 1), (2, 2), (1, 1), "valid"),
]


def _conv_case(case):
    """(spec, x, filter, bias, requantization, reference output) for one CONV_CASES row."""
    in_h, in_w, in_c, out_c, kernel, stride, dilation, mode = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    padding = _padding(mode, (in_h, in_w), kernel, stride, dilation)
    spec = Conv2dSpec((in_h, in_w, in_c), out_c, Window(kernel, stride, dilation, padding))
    x = _int8(rng, (1, in_h, in_w, in_c))
    filt = _int8(rng, (out_c, *kernel, in_c))
    bias = rng.integers(-5000, 5000, size=out_c, dtype=np.int32)
    q = _requant(rng, out_c)
    want = conv2d_int8(x, filt, bias, q["mult"], q["shift"], stride=stride, dilation=dilation, padding=padding,
                       **_reference_kwargs(q))
    return spec, x, filt, bias, q, want


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"_k{c[4][0]}s{c[5][0]}")
def test_conv2d_matches_reference(case, tmp_path):
    spec, x, filt, bias, q, want = _conv_case(case)
    got = _mac_call(_compile(conv2d_kernel(spec), tmp_path), x, filt, bias, q, want.shape)
    np.testing.assert_array_equal(got, want)


DEPTHWISE_CASES = [  # (H, W, C, depth multiplier, kernel, stride, dilation, padding)
    (6, 6, 4, 1, (3, 3), (1, 1), (1, 1), "same"),
    (9, 8, 3, 1, (3, 3), (2, 2), (1, 1), "same"),
    (7, 7, 2, 2, (3, 3), (1, 1), (1, 1), "valid"),
    (8, 8, 3, 2, (5, 5), (2, 2), (1, 1), "same"),
    (10, 10, 2, 1, (7, 7), (1, 1), (1, 1), "same"),
    (9, 9, 3, 1, (3, 3), (1, 1), (2, 2), "same"),
    (5, 6, 8, 1, (1, 1), (1, 1), (1, 1), "valid"),
    (7, 6, 3, 2, (3, 2), (1, 2), (1, 1), (2, 1, 0, 1)),
]


def _depthwise_case(case):
    """(spec, x, filter, bias, requantization, reference output) for one DEPTHWISE_CASES row."""
    in_h, in_w, in_c, multiplier, kernel, stride, dilation, mode = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    padding = _padding(mode, (in_h, in_w), kernel, stride, dilation)
    spec = DepthwiseConv2dSpec((in_h, in_w, in_c), multiplier, Window(kernel, stride, dilation, padding))
    out_c = in_c * multiplier
    x = _int8(rng, (1, in_h, in_w, in_c))
    filt = _int8(rng, (1, *kernel, out_c))
    bias = rng.integers(-5000, 5000, size=out_c, dtype=np.int32)
    q = _requant(rng, out_c)
    want = depthwise_conv2d_int8(x, filt, bias, q["mult"], q["shift"], depth_multiplier=multiplier, stride=stride,
                                 dilation=dilation, padding=padding, **_reference_kwargs(q))
    return spec, x, filt, bias, q, want


def _depthwise_id(case) -> str:
    return "x".join(map(str, case[:4])) + f"_k{case[4][0]}s{case[5][0]}"


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=_depthwise_id)
def test_depthwise_conv2d_matches_reference(case, tmp_path):
    spec, x, filt, bias, q, want = _depthwise_case(case)
    got = _mac_call(_compile(depthwise_conv2d_kernel(spec), tmp_path), x, filt, bias, q, want.shape)
    np.testing.assert_array_equal(got, want)


def _depthwise_graph(case) -> Graph:
    """One int8 depthwise node ``dw`` (x -> y) with seeded random weights and quantization."""
    in_h, in_w, channels, _, kernel, stride, dilation, mode = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()) + 1)
    attrs = DepthwiseConv2dAttrs(stride, dilation, _padding(mode, (in_h, in_w), kernel, stride, dilation))
    w_scale = (10 ** rng.uniform(-3, -1.5, size=channels)).astype(np.float32)
    graph = Graph("inplace")
    graph.add_tensor(Tensor("x", (1, in_h, in_w, channels), "int8", quant=QuantParams.per_tensor(0.05, 3)))
    graph.add_tensor(Tensor("w", (1, *kernel, channels), "int8", _int8(rng, (1, *kernel, channels)),
                            QuantParams(w_scale, np.zeros(channels, np.int32), 3)))
    graph.add_tensor(Tensor("b", (channels,), "int32", rng.integers(-5000, 5000, size=channels, dtype=np.int32)))
    (out_shape,) = get_op("depthwise_conv2d").infer_shapes(attrs, [graph.tensors["x"].shape, graph.tensors["w"].shape])
    graph.add_tensor(Tensor("y", out_shape, "int8", quant=QuantParams.per_tensor(0.02, -7)))
    graph.nodes, graph.inputs, graph.outputs = [Node("dw", "depthwise_conv2d", ["x", "w", "b"], ["y"], attrs)], ["x"], ["y"]
    return graph


INPLACE_CASES = [c for c in DEPTHWISE_CASES if c[3] == 1] + [
    (7, 6, 7, 1, (3, 3), (1, 1), (1, 1), "same"),  # dsp_c4: a group of 4, then of 3
    (8, 9, 6, 1, (3, 3), (2, 2), (1, 1), "same"),  # dsp_c4 stride 2: then a group of 2
    (9, 9, 5, 1, (3, 3), (2, 2), (1, 1), "valid"),
]
C4_3X3 = ((3, 3), (1, 1))  # kernel and dilation the dsp_c4 kernel runs (stride 1 or 2)


@pytest.mark.parametrize("case,variant", [(c, v) for c in INPLACE_CASES for v in ("tvm", "dsp", "dsp lean", "dsp_c4")
                                          if v != "dsp_c4" or (c[4], c[6]) == C4_3X3 and c[5][0] == c[5][1] <= 2],
                         ids=lambda value: value if isinstance(value, str) else _depthwise_id(value))
def test_inplace_depthwise_writes_over_its_input(case, variant, tmp_path):
    """The in-place call the code generator emits turns one buffer holding the input into the interpreter's
    output: the portable one-channel kernel run channel by channel through ek_scratch, or the DSP kernel
    with its padded plane, or (lean, patched schedules) with a row window (KH input rows in
    ek_scratch; each output row stays behind the rows it reads), or four channels at a time through a
    row window of pixel pairs (dsp_c4)."""
    graph = _depthwise_graph(case)
    node = graph.nodes[0]
    kernels = KernelChoice(load_target("cortex-m7"))
    kernels = kernels.portable() if variant == "tvm" else dataclasses.replace(kernels, lean=variant == "dsp lean",
                                                                              prefer=variant.split()[0])
    call = get_op("depthwise_conv2d").lower(node, graph, "dw", lambda name: "buffer", in_place=True, kernels=kernels)
    assert call.kernel.variant == variant.split()[0]
    x = _int8(np.random.default_rng(len(tmp_path.name)), graph.tensors["x"].shape)
    (want,) = run_graph(graph, [x], mode="int8").values()
    arrays = "".join(f"static const {c.ctype} {c.name}[] = {{{', '.join(map(str, np.ravel(c.values)))}}};\n"
                     for c in call.constants)
    (tmp_path / "driver.c").write_text(
        f'#include "{COMPAT_HEADER_NAME}"\n{call.kernel.prototype};\n'
        "#define EK_CHECK(call) do { int32_t status_ = (call); if (status_ != 0) return status_; } while (0)\n"
        f"static int8_t ek_scratch[{call.scratch_bytes}];\n{arrays}"
        f"int32_t run_inplace(int8_t *buffer) {{\n{call.c_statement()}\nreturn 0;\n}}\n")
    (tmp_path / COMPAT_HEADER_NAME).write_text(COMPAT_HEADER_TEXT)
    (tmp_path / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    (tmp_path / "kernel.c").write_text(call.kernel.c_code)
    library = tmp_path / "inplace.so"
    subprocess.run(["gcc", "-std=c99", "-O2", *WARNINGS, "-shared", "-fPIC", "-o", str(library),
                    str(tmp_path / "kernel.c"), str(tmp_path / "driver.c")], check=True)
    buffer = np.zeros(max(x.size, want.size), dtype=np.int8)
    buffer[:x.size] = x.ravel()
    _call(getattr(ctypes.CDLL(str(library)), "run_inplace"), buffer)
    planes = x.shape[1] * x.shape[2] + want.shape[1] * want.shape[2]  # portable: an input and an output plane
    window_rows = (case[4][0] - 1) * case[6][0] + 1  # KH, dilated
    assert call.scratch_bytes == (planes if variant == "tvm" else call.kernel.scratch_bytes)
    assert variant != "dsp lean" or call.scratch_bytes < window_rows * (x.shape[2] + 8) + 4 < planes
    np.testing.assert_array_equal(buffer[:want.size].reshape(want.shape), want)


@pytest.mark.parametrize("in_features,out_features", [(1, 1), (10, 4), (64, 10), (37, 13)])
def test_fully_connected_matches_reference(in_features, out_features, tmp_path):
    rng = np.random.default_rng(in_features * 1000 + out_features)
    x = _int8(rng, (1, in_features))
    filt = _int8(rng, (out_features, in_features))
    bias = rng.integers(-5000, 5000, size=out_features, dtype=np.int32)
    q = _requant(rng, out_features)
    function = _compile(fully_connected_kernel(FullyConnectedSpec(in_features, out_features)), tmp_path)
    got = _mac_call(function, x, filt, bias, q, (1, out_features))
    want = fully_connected_int8(x, filt, bias, q["mult"], q["shift"], **_reference_kwargs(q))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("size,scales", [(1, (0.05, 0.05, 0.1)), (48, (0.02, 0.07, 0.05)), (300, (0.1, 0.01, 0.3)),
                                         (96, (0.004, 0.003, 0.006)),
                                         (64, (1.0, 1.0, 1e-7))])  # output shift > 0: the general form
def test_add_matches_reference(size, scales, tmp_path):
    rng = np.random.default_rng(size)
    scale_a, scale_b, scale_out = scales
    twice_max = 2 * max(scale_a, scale_b)
    a_mult, a_shift = quantize_multiplier(scale_a / twice_max)
    b_mult, b_shift = quantize_multiplier(scale_b / twice_max)
    out_mult, out_shift = quantize_multiplier(twice_max / ((1 << 20) * scale_out))
    out_offset = int(rng.integers(-128, 128))
    params = dict(a_offset=-int(rng.integers(-128, 128)), a_mult=a_mult, a_shift=a_shift,
                  b_offset=-int(rng.integers(-128, 128)), b_mult=b_mult, b_shift=b_shift, out_offset=out_offset,
                  out_mult=out_mult, out_shift=out_shift, act_min=max(-128, out_offset - 50), act_max=127)
    a, b = _int8(rng, (1, size)), _int8(rng, (1, size))
    out = np.zeros((1, size), dtype=np.int8)
    _call(_compile(add_kernel(AddSpec(size)), tmp_path), a, b, out, *params.values())
    np.testing.assert_array_equal(out, add_int8(a, b, **params))


POOL_CASES = [  # (H, W, C, kernel, stride, padding, act_min, act_max)
    (4, 4, 3, (2, 2), (2, 2), "valid", -128, 127),
    (7, 7, 4, (3, 3), (2, 2), "same", -128, 127),
    (6, 5, 2, (3, 3), (1, 1), "same", -20, 40),
    (7, 7, 8, (7, 7), (1, 1), "valid", -128, 127),
    (9, 8, 3, (5, 3), (2, 3), (2, 1, 2, 1), 0, 127),
]


POOLS = {"avg": (avg_pool2d_kernel, avg_pool2d_int8), "max": (max_pool2d_kernel, max_pool2d_int8)}


@pytest.mark.parametrize("pool", sorted(POOLS))
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[:3])) + f"_k{c[3][0]}s{c[4][0]}")
def test_pool2d_matches_reference(pool, case, tmp_path):
    in_h, in_w, channels, kernel, stride, mode, act_min, act_max = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    padding = _padding(mode, (in_h, in_w), kernel, stride)
    spec = Pool2dSpec((in_h, in_w, channels), Window(kernel, stride, padding=padding))
    generate, reference = POOLS[pool]
    x = _int8(rng, (1, in_h, in_w, channels))
    out = np.zeros((1, *spec.output_shape), dtype=np.int8)
    _call(_compile(generate(spec), tmp_path), x, out, act_min, act_max)
    want = reference(x, kernel=kernel, stride=stride, padding=padding, act_min=act_min, act_max=act_max)
    np.testing.assert_array_equal(out, want)


def test_requantization_expression_matches_numpy_on_edge_values(tmp_path):
    """INT32 extremes, the saturating INT32_MIN * INT32_MIN product, shifts from -31 to +30, ties."""
    int32 = np.iinfo(np.int32)
    values = [int32.min, int32.min + 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, int32.max]
    grid = np.array(np.meshgrid(values, [int32.min, 0, 1, 1 << 30, int32.max], range(-31, 31))).reshape(3, -1)
    x, mult, shift = (np.ascontiguousarray(row, dtype=np.int32) for row in grid)
    size = x.size
    tensors = [te.placeholder((size,), "int32", name=name) for name in ("x", "mult", "shift")]
    out = te.compute((size,), lambda i: multiply_by_quantized_multiplier(*(t[i] for t in tensors)), name="out")
    kernel = build_kernel("mbqm_test", size, [*tensors, out], lambda sch: None, ("x", "mult", "shift"))
    got = np.zeros(size, dtype=np.int32)
    _call(_compile(kernel, tmp_path), x, mult, shift, got)
    want = fixedpoint.multiply_by_quantized_multiplier(x, mult, shift)
    np.testing.assert_array_equal(got, want)


def test_unfused_intermediate_tensor_is_refused():
    """A stage left unscheduled would be a stack array on the MCU: generation fails and says what to do."""
    x = te.placeholder((16,), "int8", name="x")
    doubled = te.compute((16,), lambda i: x[i].astype("int32") * 2, name="doubled")
    out = te.compute((16,), lambda i: (doubled[i] + 1).astype("int8"), name="out")
    with pytest.raises(RuntimeError, match="on the stack"):
        build_kernel("unfused_test", 16, [x, out], lambda sch: None, ("x",))


def test_requant_cases_cover_both_shift_directions():
    shifts = np.concatenate([_requant(np.random.default_rng(seed), 8)["shift"] for seed in range(4)])
    assert shifts.min() < 0 < shifts.max()


def test_equal_specs_share_one_kernel_and_different_specs_do_not():
    spec = Conv2dSpec((8, 8, 4), 8, Window((3, 3), (1, 1), (1, 1), (1, 1, 1, 1)))
    same = Conv2dSpec((8, 8, 4), 8, Window([3, 3], padding=[1, 1, 1, 1]))
    other = Conv2dSpec((8, 8, 4), 8, Window((3, 3), (2, 2), (1, 1), (1, 1, 1, 1)))
    assert conv2d_kernel(spec).name == conv2d_kernel(same).name
    assert conv2d_kernel(spec).name != conv2d_kernel(other).name
    assert conv2d_kernel(spec).name.startswith("ek_conv2d_s8_")


CROSS_KERNELS = [
    lambda: conv2d_kernel(Conv2dSpec((9, 9, 3), 5, Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)))),
    lambda: depthwise_conv2d_kernel(DepthwiseConv2dSpec((8, 8, 3), 2, Window((3, 3), padding=(1, 1, 1, 1)))),
    lambda: fully_connected_kernel(FullyConnectedSpec(64, 10)),
    lambda: add_kernel(AddSpec(48)),
    lambda: avg_pool2d_kernel(Pool2dSpec((7, 7, 4), Window((3, 3), (2, 2), padding=(1, 1, 1, 1)))),
    lambda: max_pool2d_kernel(Pool2dSpec((7, 7, 4), Window((3, 3), (2, 2), padding=(1, 1, 1, 1)))),
]


def cross_compile_for_cortex_m7(kernel_makers, folder) -> None:
    """Cross-compile each kernel with -Wall -Wextra -Werror; a warning or error fails the caller."""
    (folder / COMPAT_HEADER_NAME).write_text(COMPAT_HEADER_TEXT)
    (folder / mac_dsp.HEADER_NAME).write_text(mac_dsp.HEADER_TEXT)
    for make in kernel_makers:
        kernel = make()
        source = folder / f"{kernel.name}.c"
        source.write_text(kernel.c_code)
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-mcpu=cortex-m7", "-mthumb", *WARNINGS, "-c",
                        "-o", str(source.with_suffix(".o")), str(source)], check=True)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_kernels_cross_compile_for_cortex_m7_without_warnings(tmp_path):
    cross_compile_for_cortex_m7(CROSS_KERNELS, tmp_path)
