"""MLPerf Tiny int8 models as firmware: `compile_model` for cortex-m7 (real TVM kernels, real
arm-none-eabi-gcc), run by `run_build` in the real QEMU on real and random inputs, are bit-exact with
the integer reference interpreter AND byte-identical to the TFLite Micro Python interpreter.

Real inputs are the ones each model was made for (photos preprocessed to the VWW person detector's
96x96 int8, pixel - 128; CIFAR-10-sized photos for ResNet-8; DS-CNN's keyword MFCCs have no real
samples here, so it runs on random inputs only), written to a stacked .npy that `run_build` loads
the way `edgekit run --inputs X.npy` does.
"""

import numpy as np
import pytest
from test_tflite_import import _inputs, _tflm_outputs

from edgekit.compiler import compile_model
from edgekit.frontend.tflite import import_tflite
from edgekit.runner import run_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

MODELS = ["mlperf-tiny/vww_96_int8", "mlperf-tiny/resnet8_cifar10_int8", "mlperf-tiny/dscnn_kws_int8",
          "mlperf-tiny/ad01_int8", "tflite-micro/hello_world_int8"]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.split("/")[1])
def test_firmware_is_bit_exact_and_byte_identical_to_tflite_micro(model, models_dir, data_dir, tmp_path):
    path = models_dir / f"{model}.tflite"
    graph = import_tflite(path)
    inputs = _inputs(model, graph, data_dir)  # real inputs first, then 4 random ones
    x_tensor, y_tensor = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert all(x.dtype == np.int8 and x.shape == x_tensor.shape for x in inputs)
    if model.endswith("vww_96_int8"):  # the photos are pixel - 128 (input scale 1/255, zero point -128)
        assert (x_tensor.quant.scalar_zero_point, round(1 / x_tensor.quant.scalar_scale)) == (-128, 255)
    stacked = tmp_path / "inputs.npy"
    np.save(stacked, np.stack(inputs))

    build = compile_model(str(path), "cortex-m7", output=tmp_path / "build").build_dir
    result = run_build(build, inputs=stacked)

    assert result.inputs == len(inputs)
    assert result.bit_exact, f"{model}: {result.mismatches} of {result.inputs} outputs differ from the interpreter"
    for i, expected in enumerate(_tflm_outputs(path, inputs)):
        got = result.outputs[0][i]
        assert got.dtype == np.int8 and got.size == expected.size == y_tensor.size
        differ = int(np.sum(got.reshape(expected.shape).view(np.uint8) != expected.view(np.uint8)))
        assert differ == 0, f"{model} input {i}: {differ} of {expected.size} firmware output bytes differ from TFLM"
    # a meaningful check: the outputs are not all one saturated constant
    assert len(np.unique(result.outputs[0])) > 2


def test_nchw_mobilenet_v2_fits_with_default_flags_and_is_tflite_micro(models_dir, data_dir, tmp_path):
    """tflite-micro's MobileNetV2 (NCHW input TRANSPOSE, 18 explicit PADs; TFLite Micro needs a
    2.6 MB arena) compiles for cortex-m7 as typed: the PADs fold into the convolutions, the
    transpose becomes the input layout, --patch fit runs the first blocks on patches, and it fits.
    Fed the NCHW dog bytes TFLite Micro's own test feeds it, the firmware gives TFLite Micro's bytes:
    class 258 (Samoyed)."""
    path = models_dir / "tflite-micro/mobilenet_v2_int8_224_nchw.tflite"
    dog = np.load(data_dir / "samples/dog_bytes_as_int8_1x3x224x224.npy").astype(np.int8)
    np.save(tmp_path / "dog.npy", dog)
    build = compile_model(str(path), "cortex-m7", output=tmp_path / "build")
    assert build.manifest["fits"] and build.manifest["schedule"]["plan"] == "patched"
    result = run_build(build.build_dir, inputs=str(tmp_path / "dog.npy"))
    assert result.bit_exact and result.peak_sram_bytes <= 327_680
    (expected,) = _tflm_outputs(path, [dog])
    got = result.outputs[0][0]
    assert got.tobytes() == expected.tobytes() and int(np.argmax(got)) == 258
