"""The QUANTIZE (float -> int8, int8 -> int8) and DEQUANTIZE kernels, built with the host gcc and
called through ctypes, equal the op references byte for byte, on random values and on the values
where rounding is decided: quotients at and next to k + 1/2, where a float64 division (instead of
TFLite Micro's float32 one) or round-half-to-even would differ. They cross-compile for Cortex-M7.
"""

import numpy as np
import pytest

from edgekit.codegen.kernels.quantize import QuantizeSpec, quantize_kernel
from edgekit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from edgekit.ops.quantize import affine_quantize
from test_kernels_host import _call, _compile, cross_compile_for_cortex_m7


def _halfway_values(rng, scale: np.float32, count: int) -> np.ndarray:
    """float32 values whose quotient by ``scale`` lies at or one ulp around k + 1/2."""
    k = rng.integers(-140, 140, count).astype(np.float32)
    exact = (k + np.float32(0.5)) * scale
    return np.concatenate([exact, np.nextafter(exact, np.float32(np.inf)), np.nextafter(exact, np.float32(-np.inf))])


@pytest.mark.parametrize("seed", range(3))
def test_float_to_int8_matches_affine_quantize(seed, tmp_path):
    rng = np.random.default_rng(seed)
    scale = np.float32(10 ** rng.uniform(-3, 0))
    zero_point = int(rng.integers(-128, 128))
    x = np.concatenate([rng.normal(0, 150 * scale, 500).astype(np.float32), _halfway_values(rng, scale, 200),
                        np.float32([0.0, -0.0, 1e30, -1e30, 3 * scale, -3 * scale])])
    kernel = _compile(quantize_kernel(QuantizeSpec(x.size, "f32_s8")), tmp_path)
    out = np.zeros(x.size, np.int8)
    _call(kernel, x, out, scale, zero_point)
    expected = affine_quantize(x, scale, zero_point)
    np.testing.assert_array_equal(out, expected)
    # the halfway cases really test the rounding: round half to even differs on some of them
    half_even = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
    assert np.any(half_even != expected)


def test_affine_quantize_divides_in_float32():
    """TFLite Micro divides by (float)scale: x / scale rounds to k + 1/2 in float32 although the exact
    quotient is below it, and std::round then goes away from zero."""
    scale = np.float32(0.1)
    x = np.float32(0.25)  # 0.25 / 0.1f is 2.4999999 in float64 but 2.5 in float32
    assert np.float64(x) / np.float64(scale) < 2.5 and x / scale == np.float32(2.5)
    assert affine_quantize(np.array([x]), scale, 0)[0] == 3


@pytest.mark.parametrize("seed", range(3))
def test_int8_requantize_matches_tflite_arithmetic(seed, tmp_path):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, 1000).astype(np.int8)
    in_scale, out_scale = np.float32(10 ** rng.uniform(-3, -1)), np.float32(10 ** rng.uniform(-3, -1))
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
    mult, shift = quantize_multiplier(np.float64(in_scale) / np.float64(out_scale))
    kernel = _compile(quantize_kernel(QuantizeSpec(x.size, "s8_s8")), tmp_path)
    out = np.zeros(x.size, np.int8)
    _call(kernel, x, out, -zp_in, mult, shift, zp_out)
    expected = np.clip(multiply_by_quantized_multiplier(x.astype(np.int64) - zp_in, mult, shift) + zp_out, -128, 127)
    np.testing.assert_array_equal(out, expected.astype(np.int8))


@pytest.mark.parametrize("seed", range(3))
def test_int8_to_float_is_the_rounded_exact_product(seed, tmp_path):
    """TFLite Micro: (float)((double)scale * (x - zero_point)); computed here in float64 on purpose."""
    rng = np.random.default_rng(seed)
    x = np.arange(-128, 128, dtype=np.int8)
    scale = np.float32(10 ** rng.uniform(-4, 1))
    zero_point = int(rng.integers(-128, 128))
    kernel = _compile(quantize_kernel(QuantizeSpec(x.size, "s8_f32")), tmp_path)
    out = np.zeros(x.size, np.float32)
    _call(kernel, x, out, scale, zero_point)
    expected = (np.float64(scale) * (x.astype(np.float64) - zero_point)).astype(np.float32)
    np.testing.assert_array_equal(out.view(np.int32), expected.view(np.int32))


def test_quantize_kernels_cross_compile_for_cortex_m7(tmp_path):
    cross_compile_for_cortex_m7([lambda direction=direction: quantize_kernel(QuantizeSpec(64, direction))
                                 for direction in ("f32_s8", "s8_s8", "s8_f32")], tmp_path)
