"""Post-training quantization: the ImageNet MobileNetV2 end to end, the int8 spec on a tiny graph,
the schemes, and TFLite's fixed-point helpers against values worked out by hand and exact integers.

Expected numbers here come from the TFLite int8 spec and from the definitions of the gemmlowp
primitives, computed with NumPy or Python integers in the test, never read back from the code.
"""

import math
import tomllib
from fractions import Fraction

import numpy as np
import pytest

from edgekit import api
from edgekit.errors import UnknownNameError
from edgekit.ir import Graph, Node, Tensor
from edgekit.ir.interpreter import run_graph
from edgekit.ops import get_op
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.softmax import SoftmaxAttrs
from edgekit import fixedpoint as fp
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.compare import cosine, sqnr_db
from edgekit.quantize.convert import quantize_graph
from edgekit.quantize.scheme import SCHEME_DIR, list_schemes, load_scheme
from edgekit.samples import load_inputs

MAC_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def round_half_away(x):
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# -- the ImageNet MobileNetV2 ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quantized(mobilenetv2, data_dir):
    return api.quantize(mobilenetv2, str(data_dir / "images"), "int8")


@pytest.mark.slow
def test_mobilenetv2_layer_report(quantized):
    """One report entry per conv layer, all with finite SQNR; the first layers are nearly exact."""
    graph = quantized.model.graph
    report = {e.node: e for e in quantized.layer_errors}
    convs = [n.name for n in graph.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    assert len(convs) == 52  # MobileNetV2: 35 convolutions and 17 depthwise convolutions
    assert set(convs) <= set(report)
    assert all(math.isfinite(e.sqnr_db) and math.isfinite(e.max_abs) for e in report.values())
    print("\nfirst layers:", [(n, round(report[n].sqnr_db, 1), round(report[n].cosine, 5)) for n in convs[:4]])
    assert report[convs[0]].sqnr_db > 30
    for name in convs[:4]:
        assert report[name].cosine > 0.99, name
    worst = min(report.values(), key=lambda e: e.cosine)
    assert worst.cosine > 0.9, worst
    assert quantized.calibration_samples == 9 and not quantized.synthetic_calibration


@pytest.mark.slow
def test_mobilenetv2_top1_agrees_with_float_on_photos(quantized, mobilenetv2, data_dir):
    """int8 top-1 equals float top-1 on every photo (int8.toml with bias correction; without it the rocket,
    a 0.68-logit call between two classes, flips)."""
    images = data_dir / "images"
    names = sorted(p.name for p in images.iterdir())
    float_inputs = load_inputs(images, mobilenetv2, for_float=True)
    int8_graph = quantized.model.graph
    input_quant = int8_graph.tensors[int8_graph.inputs[0]].quant
    agree = 0
    print(f"\n{'photo':<18} {'float':>6} {'int8':>6}")
    for name, x in zip(names, float_inputs, strict=True):
        ref = run_graph(mobilenetv2.graph, [x], mode="float")[mobilenetv2.graph.outputs[0]]
        got = run_graph(int8_graph, [input_quant.quantize(x)], mode="int8")[int8_graph.outputs[0]]
        f_top, q_top = int(np.argmax(ref)), int(np.argmax(got))
        agree += f_top == q_top
        print(f"{name:<18} {f_top:>6} {q_top:>6}{'' if f_top == q_top else '  <- differs'}")
    print(f"agreement {agree}/{len(names)}")
    assert agree == len(names)
    assert quantized.top1_agreement == pytest.approx(agree / len(names))


# -- the int8 spec on a tiny graph -------------------------------------------------------------------

def _tiny_graph(seed: int = 0) -> Graph:
    """conv(relu) -> depthwise -> max pool -> reshape -> dense -> softmax, random float weights."""
    rng = np.random.default_rng(seed)
    graph = Graph(name="tiny")

    def const(name, shape, scale=1.0):
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        graph.add_tensor(Tensor(name, shape, "float32", data))
        return name

    def node(name, op, inputs, attrs):
        (shape,) = get_op(op).infer_shapes(attrs, [graph.tensors[n].shape for n in inputs])
        graph.add_tensor(Tensor(f"{name}_out", shape))
        graph.nodes.append(Node(name, op, inputs, [f"{name}_out"], attrs))
        return f"{name}_out"

    graph.add_tensor(Tensor("x", (1, 6, 6, 3)))
    graph.inputs = ["x"]
    c = node("conv", "conv2d", ["x", const("conv_w", (4, 3, 3, 3), 0.3), const("conv_b", (4,), 0.2)],
             Conv2dAttrs(padding=(1, 1, 1, 1), activation="relu"))
    d = node("dw", "depthwise_conv2d", [c, const("dw_w", (1, 3, 3, 4), 0.5), const("dw_b", (4,), 0.1)],
             DepthwiseConv2dAttrs(stride=(2, 2), padding=(1, 1, 1, 1)))
    p = node("pool", "max_pool2d", [d], Pool2dAttrs((3, 3), (3, 3)))
    r = node("flat", "reshape", [p], ReshapeAttrs((1, 4)))
    f = node("fc", "fully_connected", [r, const("fc_w", (5, 4), 0.8), const("fc_b", (5,), 0.3)],
             FullyConnectedAttrs())
    graph.outputs = [node("prob", "softmax", [f], SoftmaxAttrs())]
    graph.lint()
    return graph


def _random_inputs(count=8, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 3.0, (1, 6, 6, 3)).astype(np.float32) for _ in range(count)]


@pytest.fixture(scope="module")
def tiny():
    float_graph = _tiny_graph()
    ranges = calibrate(float_graph, _random_inputs(), load_scheme("int8"))
    ranges["x"] = (-1.0, 3.0)  # the input range the test works out by hand below
    return float_graph, ranges


def test_activation_params_follow_the_int8_spec(tiny):
    """Input range [-1, 3]: scale 4/255, zero point round(-128 + 1 / (4/255)) = round(-64.25) = -64."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8"))
    x = q.tensors["x"]
    assert x.dtype == "int8"
    assert x.quant.scalar_scale == pytest.approx(4 / 255, rel=1e-6)
    assert x.quant.scalar_zero_point == -64


@pytest.mark.parametrize("low, high, scale, zero_point", [
    (0.5, 2.0, 2 / 255, -128),   # widened down to 0: 0 is exactly -128
    (-2.0, -1.0, 2 / 255, 127),  # widened up to 0: 0 is exactly 127
    (-0.5, 1.5, 2 / 255, -64),   # -128 + 0.5 / (2/255) = -64.25
    (-3.0, 1.0, 4 / 255, 63),    # -128 + 3 / (4/255) = 63.25
])
def test_activation_ranges_always_contain_zero(low, high, scale, zero_point):
    """Activation ranges are widened to include 0, so zero (padding, ReLU) is exactly representable."""
    from edgekit.quantize.convert import activation_params

    quant = activation_params(low, high)
    assert quant.scalar_scale == pytest.approx(scale, rel=1e-6)
    assert quant.scalar_zero_point == zero_point
    assert quant.dequantize(quant.quantize(np.zeros(1)))[0] == 0.0


def test_per_channel_weights_follow_the_int8_spec(tiny):
    """Weights: int8 in [-127, 127], scale = max|w| / 127 per output channel (conv axis 0, depthwise axis 3,
    dense axis 0), zero point 0; the largest weight of each channel becomes +-127."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8"))
    for node_name, weight_name, axis in (("conv", "conv_w", 0), ("dw", "dw_w", 3), ("fc", "fc_w", 0)):
        w = float_graph.tensors[weight_name].data.astype(np.float64)
        wq = q.tensors[weight_name]
        other = tuple(i for i in range(w.ndim) if i != axis)
        expected_scale = np.abs(w).max(axis=other) / 127
        assert wq.dtype == "int8" and wq.data.dtype == np.int8
        assert wq.data.min() >= -127 and wq.data.max() <= 127
        assert wq.quant.axis == axis
        np.testing.assert_allclose(wq.quant.scale, expected_scale, rtol=1e-6)
        assert np.all(wq.quant.zero_point == 0)
        shape = [1] * w.ndim
        shape[axis] = -1
        np.testing.assert_array_equal(wq.data, round_half_away(w / wq.quant.scale.astype(np.float64).reshape(shape)))
        assert np.all(np.abs(wq.data.astype(np.int32)).max(axis=other) == 127)


def test_bias_is_int32_at_input_scale_times_weight_scale(tiny):
    """Bias: int32 = round(b / (s_in * s_w[c])) with the scale product stored as float32, zero point 0."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8"))
    for node_name in ("conv", "dw", "fc"):
        node = q.node(node_name)
        s_in = np.float64(q.tensors[node.inputs[0]].quant.scalar_scale)
        weight_name, bias_name = node.inputs[1], node.inputs[2]
        w = float_graph.tensors[weight_name].data.astype(np.float64)
        axis = q.tensors[weight_name].quant.axis
        s_w = np.float32(np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis)) / 127)
        bias_scale = np.float32(s_in * s_w.astype(np.float64))
        b = float_graph.tensors[bias_name].data.astype(np.float64)
        bq = q.tensors[bias_name]
        assert bq.dtype == "int32" and bq.data.dtype == np.int32
        np.testing.assert_array_equal(bq.data, round_half_away(b / bias_scale.astype(np.float64)))
        np.testing.assert_allclose(bq.quant.scale, bias_scale, rtol=1e-7)
        assert np.all(bq.quant.zero_point == 0)


def test_pass_through_ops_share_their_input_quantization(tiny):
    """Pooling and reshape reuse their input's (scale, zero point); softmax outputs use TFLite's (1/256, -128)."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8"))
    for name in ("pool", "flat"):
        node = q.node(name)
        a, b = q.tensors[node.inputs[0]].quant, q.tensors[node.output].quant
        assert (a.scalar_scale, a.scalar_zero_point) == (b.scalar_scale, b.scalar_zero_point)
    prob = q.tensors["prob_out"].quant
    assert (prob.scalar_scale, prob.scalar_zero_point) == (1 / 256, -128)
    assert all(t.dtype == "int8" for t in q.activations())


def test_quantized_tiny_graph_tracks_float(tiny):
    """The int8 run dequantizes to within a few output steps of the float run (softmax probabilities)."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8"))
    x_quant = q.tensors["x"].quant
    for x in _random_inputs(4, seed=7):
        ref = run_graph(float_graph, [x], mode="float")["prob_out"]
        got = q.tensors["prob_out"].quant.dequantize(run_graph(q, [x_quant.quantize(x)], mode="int8")["prob_out"])
        assert np.max(np.abs(got - ref)) < 8 / 256


def test_per_tensor_scheme_gives_one_weight_scale(tiny):
    """int8_per_tensor: one scale per weight tensor, max|w| / 127 over the whole filter."""
    float_graph, ranges = tiny
    q = quantize_graph(float_graph, ranges, load_scheme("int8_per_tensor"))
    for weight_name in ("conv_w", "dw_w", "fc_w"):
        wq = q.tensors[weight_name]
        assert wq.quant.axis is None and wq.quant.scale.size == 1
        assert wq.quant.scale[0] == pytest.approx(np.abs(float_graph.tensors[weight_name].data).max() / 127, rel=1e-6)


def test_all_zero_weight_channel_gets_a_finite_scale():
    """A dead output channel (all weights 0) quantizes to zeros with a positive finite scale, not 0/0."""
    graph = _tiny_graph(3)
    graph.tensors["conv_w"].data[2] = 0.0
    ranges = calibrate(graph, _random_inputs(2), load_scheme("int8"))
    q = quantize_graph(graph, ranges, load_scheme("int8"))
    wq = q.tensors["conv_w"]
    assert np.all(wq.data[2] == 0)
    assert np.all(np.isfinite(wq.quant.scale)) and np.all(wq.quant.scale > 0)
    assert np.all(np.abs(q.tensors["conv_b"].data.astype(np.int64)) < 2**31 - 1)


def test_bias_that_overflows_int32_keeps_its_value():
    """A tiny input range times tiny weights makes b / (s_in * s_w) exceed int32; the bias must survive."""
    graph = _tiny_graph(4)
    graph.tensors["fc_w"].data *= 1e-4
    graph.tensors["fc_b"].data[:] = 1.0
    ranges = calibrate(graph, _random_inputs(2), load_scheme("int8"))
    ranges["dw_out"] = (-1e-5, 1e-5)  # pooling and reshape share it: the dense layer's input scale
    q = quantize_graph(graph, ranges, load_scheme("int8"))
    bias = q.tensors["fc_b"]
    np.testing.assert_allclose(bias.quant.dequantize(bias.data), 1.0, rtol=0.01)


def test_compare_metrics():
    """SQNR is inf for an exact copy and 0 dB when nothing survives; cosine of a zero vector with a non-zero
    one is 0, not 1 (a layer quantized to all zeros must not look perfect)."""
    ref = np.array([1.0, -2.0, 3.0])
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(ref, np.zeros(3)) == pytest.approx(0.0)
    assert sqnr_db(ref, ref + 0.1 * np.array([1.0, 1.0, 1.0])) == pytest.approx(10 * math.log10(14 / 0.03))
    assert cosine(ref, 2 * ref) == pytest.approx(1.0)
    assert cosine(ref, -ref) == pytest.approx(-1.0)
    assert cosine(ref, np.zeros(3)) == 0.0
    assert cosine(np.zeros(3), np.zeros(3)) == 1.0


# -- schemes -----------------------------------------------------------------------------------------

EXPECTED_SCHEMES = {
    "int8": ("per_channel", "minmax"),
    "int8_mse": ("per_channel", "mse"),
    "int8_per_tensor": ("per_tensor", "minmax"),
    "int8_percentile": ("per_channel", "percentile"),
}


def test_every_scheme_file_loads():
    """Each quant/*.toml loads by name, with the granularity and observer its file states."""
    files = sorted(SCHEME_DIR.glob("*.toml"))
    assert [p.stem for p in files] == list_schemes()
    assert set(list_schemes()) >= set(EXPECTED_SCHEMES)
    for path in files:
        doc = tomllib.loads(path.read_text())
        scheme = load_scheme(path.stem)
        assert scheme.name == doc["name"] == path.stem
        assert scheme.weight_granularity == doc["weights"]["granularity"]
        assert scheme.observer == doc["activations"]["observer"]
        assert load_scheme(str(path)) == scheme
    for name, (granularity, observer) in EXPECTED_SCHEMES.items():
        scheme = load_scheme(name)
        assert (scheme.weight_granularity, scheme.observer) == (granularity, observer)
    assert load_scheme("int8_percentile").percentile == 99.99


@pytest.mark.parametrize("scheme", ["int8", "int8_mse", "int8_per_tensor", "int8_percentile"])
def test_every_scheme_quantizes_the_tiny_graph(scheme):
    """Every scheme gives a linted int8 graph whose activation ranges contain the observed zero."""
    graph = _tiny_graph()
    ranges = calibrate(graph, _random_inputs(3), load_scheme(scheme))
    for low, high in ranges.values():
        assert low <= high
    q = quantize_graph(graph, ranges, load_scheme(scheme))
    assert all(t.dtype == "int8" for t in q.activations())


def test_unknown_scheme_is_a_one_line_error():
    """An unknown scheme name lists the available ones, in one line."""
    with pytest.raises(UnknownNameError) as info:
        load_scheme("int9")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown quantization scheme 'int9'; available: ")
    for name in EXPECTED_SCHEMES:
        assert name in message


def test_scheme_file_with_unknown_observer_is_an_error(tmp_path):
    """A scheme file naming an observer edgekit lacks is refused with the allowed values."""
    path = tmp_path / "odd.toml"
    path.write_text('name = "odd"\n[weights]\ngranularity = "per_channel"\n[activations]\nobserver = "kl"\n')
    with pytest.raises(UnknownNameError, match="minmax"):
        load_scheme(str(path))


# -- TFLite fixed point: hand-worked values ----------------------------------------------------------

@pytest.mark.parametrize("real, expected", [
    (0.5, (2**30, 0)),                   # 0.5 = 0.5 * 2**0
    (1.0, (2**30, 1)),                   # 1.0 = 0.5 * 2**1
    (0.25, (2**30, -1)),
    (0.75, (3 * 2**29, 0)),              # 0.75 * 2**31
    (0.1, (1717986918, -3)),             # 0.1 = 0.8 * 2**-3; 0.8 * 2**31 = 1717986918.4
    (1 - 2**-40, (2**30, 1)),            # the fraction rounds up to 2**31: halve it, shift + 1
    (2.0**-40, (0, 0)),                  # below 2**-31: flushed to zero as TFLite does
    (0.0, (0, 0)),
])
def test_quantize_multiplier_by_hand(real, expected):
    """m = q * 2**(shift - 31) with q in [2**30, 2**31), q rounded half away from zero."""
    assert fp.quantize_multiplier(real) == expected


def test_quantize_multiplier_rejects_negative():
    with pytest.raises(ValueError):
        fp.quantize_multiplier(-0.5)


@pytest.mark.parametrize("a, b, expected", [
    (2**30, 2**30, 2**29),               # 0.5 * 0.5 = 0.25 in Q31
    (-(2**30), 2**30, -(2**29)),
    (1, 2**30, 1),                       # +0.5 rounds up
    (-1, 2**30, 0),                      # -0.5 rounds up too (gemmlowp's nudge then truncation)
    (3, 2**30, 2),                       # 1.5 -> 2
    (-3, 2**30, -1),                     # -1.5 -> -1
    (INT32_MIN, INT32_MIN, INT32_MAX),   # the one overflow saturates
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
])
def test_saturating_rounding_doubling_high_mul_by_hand(a, b, expected):
    assert int(fp.saturating_rounding_doubling_high_mul(a, b)) == expected


@pytest.mark.parametrize("x, exponent, expected", [
    (5, 1, 3), (-5, 1, -3),              # halves go away from zero
    (6, 2, 2), (-6, 2, -2),              # 1.5 -> 2, -1.5 -> -2
    (5, 2, 1), (-5, 2, -1), (7, 2, 2), (-7, 2, -2),
    (12345, 0, 12345), (-1, 31, 0),
])
def test_rounding_divide_by_pot_by_hand(x, exponent, expected):
    assert int(fp.rounding_divide_by_pot(x, exponent)) == expected


@pytest.mark.parametrize("x, multiplier, shift, expected", [
    (100, 2**30, 0, 50),                 # x * 0.5
    (101, 2**30, 0, 51),                 # 50.5 rounds up in the high multiply
    (-101, 2**30, 0, -50),               # -50.5 rounds up as well
    (100, 2**30, -1, 25),                # x * 0.25: high multiply 50, then divide by 2
    (102, 2**30, -2, 13),                # 51 / 4 = 12.75 -> 13
    (3, 2**30, 1, 3),                    # x * 1.0 via a left shift
    (4, 3 * 2**29, 0, 3),                # x * 0.75
    (2**24, 1717986918, -3, 1677722),    # x * 0.1 = 1677721.6
])
def test_multiply_by_quantized_multiplier_by_hand(x, multiplier, shift, expected):
    assert int(fp.multiply_by_quantized_multiplier(x, multiplier, shift)) == expected


def test_requantize_adds_zero_point_and_clamps():
    acc = np.array([100, 101, -101, 1000, -1000])
    out = fp.requantize(acc, 2**30, 0, output_zero_point=-10, act_min=-20, act_max=100)
    np.testing.assert_array_equal(out, [40, 41, -20, 100, -20])
    assert out.dtype == np.int8


def test_round_half_away_and_wrap_by_hand():
    np.testing.assert_array_equal(fp.round_half_away([0.5, 1.5, 2.5, -0.5, -2.5, 0.49]), [1, 2, 3, -1, -3, 0])
    np.testing.assert_array_equal(fp.wrap_int32([2**31, -(2**31) - 1, 5]), [INT32_MIN, INT32_MAX, 5])


# -- TFLite fixed point: brute force against exact integer arithmetic --------------------------------

def _srdhm_exact(a: int, b: int) -> int:
    """floor((a*b + 2**30) / 2**31), gemmlowp's rounding for every product but MIN*MIN."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + 2**30) // 2**31


def _rdbpot_exact(x: int, exponent: int) -> int:
    """x / 2**exponent rounded to nearest, halves away from zero."""
    q, r = divmod(abs(x), 2**exponent)
    q += 2 * r >= 2**exponent
    return q if x >= 0 else -q


def test_fixed_point_against_exact_integers():
    """Random int32 operands: the vectorised helpers equal Python-int evaluations of their definitions."""
    rng = np.random.default_rng(2024)
    a = rng.integers(INT32_MIN, INT32_MAX, size=3000, endpoint=True)
    b = rng.integers(INT32_MIN, INT32_MAX, size=3000, endpoint=True)
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [_srdhm_exact(int(x), int(y)) for x, y in zip(a, b)]

    exponents = rng.integers(0, 32, size=3000)
    got = fp.rounding_divide_by_pot(a, exponents)
    assert got.tolist() == [_rdbpot_exact(int(x), int(e)) for x, e in zip(a, exponents)]


def test_multiplier_and_rescale_against_exact_rationals():
    """For random real multipliers: q * 2**(shift-31) is within half a Q31 step of m, and rescaling x by
    (q, shift) is the exact product rounded twice, so within 1 of x * m."""
    rng = np.random.default_rng(7)
    reals = np.exp(rng.uniform(np.log(1e-6), np.log(8.0), size=400))
    xs = rng.integers(-(2**20), 2**20, size=400)
    for real, x in zip(reals, xs):
        q, shift = fp.quantize_multiplier(float(real))
        assert 2**30 <= q < 2**31
        represented = Fraction(q) * Fraction(2) ** (shift - 31)
        assert abs(represented - Fraction(float(real))) <= Fraction(2) ** (shift - 32)
        left, right = max(shift, 0), max(-shift, 0)
        expected = _rdbpot_exact(_srdhm_exact(int(x) * 2**left, q), right)
        got = int(fp.multiply_by_quantized_multiplier(int(x), q, shift))
        assert got == expected
        assert abs(Fraction(got) - int(x) * represented) <= 1


def test_vector_multipliers_match_scalar():
    reals = [0.5, 0.1, 3.7, 1e-9, 0.0]
    mult, shift = fp.quantize_multipliers(reals)
    assert mult.dtype == np.int32 and shift.dtype == np.int32
    assert list(zip(mult.tolist(), shift.tolist())) == [fp.quantize_multiplier(r) for r in reals]


def test_bias_correction_removes_the_mean_shift_of_weight_rounding():
    """After correct_bias, a layer's int8 output has (near) zero mean error per channel against a float
    run whose only error is the weight rounding; before it, coarse weights shift the mean visibly."""
    from edgekit.quantize.bias_correction import correct_bias, input_channel_means

    graph = _tiny_graph(4)
    samples = [x + 3.0 for x in _random_inputs(6)]  # inputs with a large mean make dW . E[x] visible
    scheme = load_scheme("int8_per_tensor")
    q = quantize_graph(graph, calibrate(graph, samples, scheme), scheme)
    fc = next(n for n in q.nodes if n.op == "fully_connected")

    def mean_error(int8_graph):
        errors = []
        for x in samples:
            ref = run_graph(graph, [x], mode="float", keep_all=True)[fc.output]
            got = run_graph(int8_graph, [int8_graph.tensors[int8_graph.inputs[0]].quant.quantize(x)], mode="int8",
                            keep_all=True)[fc.output]
            errors.append(int8_graph.tensors[fc.output].quant.dequantize(got) - ref)
        return float(np.abs(np.mean(errors, axis=0)).mean())

    before = mean_error(q)
    corrected = q.copy()
    correct_bias(graph, corrected, input_channel_means(graph, samples))
    after = mean_error(corrected)
    print(f"mean abs per-channel error: before {before:.5f}, after {after:.5f}")
    assert after < before
