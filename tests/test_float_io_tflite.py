"""int8 TFLite models with a float interface (TFLiteConverter's default: QUANTIZE first, DEQUANTIZE
last) and with several outputs, built here with TensorFlow, run as TFLite Micro runs them: they keep
their own quantization, `edgekit infer` with no mode flag gives TFLite Micro's bytes in the model's
own dtypes, and the compiled firmware in QEMU gives them too (the QUANTIZE and DEQUANTIZE kernels
included), on photos and on random inputs.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from tflite_models import convert, photos, tensorflow, tflm_outputs

from edgekit.compiler import compile_model
from edgekit.frontend.tflite import import_tflite
from edgekit.model_source import load_model
from edgekit.runner import run_build

EDGEKIT = [sys.executable, "-m", "edgekit.cli"]


def _network(two_outputs: bool):
    """A small CNN on a 16x16 photo: conv, depthwise, 1x1 conv, global mean, dense; optionally the
    max-pooled feature map as a second output."""
    tf = tensorflow()
    rng = np.random.default_rng(11)
    w1 = tf.constant(rng.normal(0, 0.4, (3, 3, 3, 8)).astype(np.float32))
    dw = tf.constant(rng.normal(0, 0.4, (3, 3, 8, 1)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.4, (1, 1, 8, 12)).astype(np.float32))
    dense = tf.constant(rng.normal(0, 0.4, (12, 5)).astype(np.float32))

    def network(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, 2, "SAME") + 0.1)
        y = tf.nn.relu6(tf.nn.depthwise_conv2d(y, dw, [1, 1, 1, 1], "SAME"))
        y = tf.nn.conv2d(y, w2, 1, "VALID")
        pooled = tf.reduce_mean(y, axis=[1, 2])
        logits = tf.matmul(pooled, dense)
        return (logits, tf.nn.max_pool2d(y, 2, 2, "VALID")) if two_outputs else logits

    return network


@pytest.fixture(scope="module")
def images(data_dir):
    return photos(data_dir)


@pytest.fixture(scope="module")
def converted(images, tmp_path_factory):
    """name -> path of a converted model, built on first use."""
    folder, paths = tmp_path_factory.mktemp("tflite"), {}

    def get(name: str):
        if name not in paths:
            paths[name] = convert(_network(name.endswith("two_outputs")), folder / f"{name}.tflite", images,
                                  int8_io=name.startswith("int8"))
        return paths[name]

    return get


@pytest.fixture(params=["float_io", "int8_io", "float_io_two_outputs"])
def model(request, converted):
    """(path, number of outputs) of a converted model."""
    return converted(request.param), 2 if request.param.endswith("two_outputs") else 1


def _inputs(path, images) -> list[np.ndarray]:
    """Three photos and two random inputs, in the model's input dtype."""
    graph = import_tflite(path)
    x = graph.tensors[graph.inputs[0]]
    rng = np.random.default_rng(5)
    if x.dtype == "int8":
        return [x.quant.quantize(image[np.newaxis]) for image in images[:3]] + [
            rng.integers(-128, 128, x.shape, dtype=np.int8) for _ in range(2)]
    return [image[np.newaxis].astype(np.float32) for image in images[:3]] + [
        rng.uniform(-0.2, 1.2, x.shape).astype(np.float32) for _ in range(2)]


def test_float_interface_keeps_its_own_quantization(model, images):
    path, outputs = model
    loaded = load_model(str(path))
    graph = loaded.graph
    assert loaded.is_quantized
    assert len(graph.outputs) == outputs
    if "float" in path.stem:
        assert graph.tensors[graph.inputs[0]].dtype == "float32"
        assert graph.nodes[0].op == "quantize"
        assert all(graph.tensors[name].dtype == "float32" for name in graph.outputs)
        assert {graph.producer(name).op for name in graph.outputs} == {"dequantize"}


def test_infer_without_a_mode_flag_is_tflite_micro(model, images, tmp_path):
    """`edgekit infer MODEL --input x.npy --output y.np[yz]`: TFLite Micro's bytes, in its dtypes;
    several outputs go to one .npz, one array per output in the model's output order."""
    path, count = model
    for i, x in enumerate(_inputs(path, images)):
        np.save(tmp_path / f"x{i}.npy", x)
        out = tmp_path / (f"y{i}.npz" if count > 1 else f"y{i}.npy")
        done = subprocess.run(EDGEKIT + ["infer", str(path), "--input", str(tmp_path / f"x{i}.npy"), "--output",
                                         str(out), "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        expected = tflm_outputs(path, [x], count)[0]
        written = np.load(out)
        got = [written[key] for key in written.files] if count > 1 else [written]
        assert [s["key"] for s in doc["outputs"]] == [f"output_{k}" for k in range(count)]
        assert len(got) == count
        for k, (g, e) in enumerate(zip(got, expected)):
            assert g.dtype == e.dtype and g.shape == e.shape, (k, g.dtype, e.dtype, g.shape, e.shape)
            assert g.tobytes() == e.tobytes(), f"input {i} output {k} differs from TFLite Micro"


def test_several_outputs_refuse_a_npy_path(converted, images, tmp_path):
    path = converted("float_io_two_outputs")
    np.save(tmp_path / "x.npy", _inputs(path, images)[0])
    done = subprocess.run(EDGEKIT + ["infer", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                                     str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and ".npz" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("private_edgekit_home")
def test_firmware_is_tflite_micro_byte_for_byte(model, images, tmp_path):
    """Compiled with default flags, run in QEMU on inputs in the model's dtype: TFLite Micro's bytes;
    `edgekit run --outputs` writes each output stacked over the inputs."""
    path, count = model
    inputs = _inputs(path, images)
    np.save(tmp_path / "x.npy", np.stack(inputs))
    build = compile_model(str(path), "cortex-m7", output=tmp_path / "build").build_dir
    result = run_build(build, inputs=str(tmp_path / "x.npy"), timeout_s=120)
    assert result.bit_exact and result.inputs == len(inputs)
    assert len(result.outputs) == count
    for i, expected in enumerate(tflm_outputs(path, inputs, count)):
        for k, e in enumerate(expected):
            got = result.outputs[k][i]
            assert got.dtype == e.dtype and got.tobytes() == e.tobytes(), f"input {i} output {k}"
    outputs = tmp_path / ("y.npz" if count > 1 else "y.npy")
    done = subprocess.run(EDGEKIT + ["run", str(build), "--inputs", str(tmp_path / "x.npy"), "--outputs",
                                     str(outputs), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    written = np.load(outputs)
    stacked = [written[key] for key in written.files] if count > 1 else [written]
    for k in range(count):
        np.testing.assert_array_equal(stacked[k], result.outputs[k])
