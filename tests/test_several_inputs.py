"""Models with several inputs (a Keras model with two image inputs, converted to int8 by TensorFlow at
test time): `edgekit infer` runs them from one .npz (input_0, input_1... in the model's input order),
byte-identical to TFLite Micro; compile and quantize refuse them in one line naming the file and the
way to run them."""

import re
import subprocess
import sys

import numpy as np
import pytest
from tflite_models import tensorflow

EDGEKIT = [sys.executable, "-m", "edgekit.cli"]
SHAPE = (1, 8, 8, 3)


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A .tflite with two int8 inputs of different quantization, and its Keras original."""
    tf = tensorflow()
    folder = tmp_path_factory.mktemp("two-inputs")
    a, b = tf.keras.Input(SHAPE[1:]), tf.keras.Input(SHAPE[1:])
    model = tf.keras.Model([a, b], tf.keras.layers.Conv2D(4, 3, padding="same")(a) + tf.keras.layers.Conv2D(4, 1)(b))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(0, 1, SHAPE).astype(np.float32),
                                                 rng.uniform(-2, 2, SHAPE).astype(np.float32)] for _ in range(10))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = folder / "two.tflite"
    path.write_bytes(converter.convert())
    model.save(folder / "two.keras")
    return path, folder / "two.keras"


def _tflm(path, inputs):
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path))
    for index, x in enumerate(inputs):
        interpreter.set_input(x, index)
    interpreter.invoke()
    return interpreter.get_output(0)


def _edgekit(*args):
    return subprocess.run(EDGEKIT + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def test_infer_takes_one_npz_with_an_array_per_input(two_inputs, tmp_path):
    path, _ = two_inputs
    rng = np.random.default_rng(3)
    for trial in range(3):
        xs = [rng.integers(-128, 128, SHAPE, dtype=np.int8) for _ in range(2)]
        np.savez(tmp_path / "xs.npz", input_0=xs[0], input_1=xs[1])
        out = tmp_path / f"y{trial}.npy"
        done = _edgekit("infer", path, "--input", tmp_path / "xs.npz", "--output", out)
        assert done.returncode == 0, done.stderr
        expected = _tflm(path, xs)
        assert np.load(out).tobytes() == expected.tobytes(), f"trial {trial} differs from TFLite Micro"
    swapped = _tflm(path, xs[::-1])
    assert swapped.tobytes() != expected.tobytes(), "the two inputs must matter, in order"


@pytest.mark.parametrize("given, expected", [
    ("x.npy", r"two has 2 inputs \(.*\); give one \.npz with the arrays input_0, input_1"),
    ("bad.npz", r"bad\.npz has no array input_0; it holds a, and two needs input_0, input_1"),
])
def test_infer_names_the_file_it_cannot_use(two_inputs, tmp_path, given, expected):
    np.save(tmp_path / "x.npy", np.zeros(SHAPE, np.int8))
    np.savez(tmp_path / "bad.npz", a=np.zeros(3))
    done = _edgekit("infer", two_inputs[0], "--input", tmp_path / given)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert re.search(expected, done.stderr), done.stderr


def test_compile_refuses_several_inputs_in_one_line(two_inputs, tmp_path):
    path, keras = two_inputs
    done = _edgekit("compile", path, "--target", "cortex-m7", "-o", tmp_path / "build")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}: the model has 2 inputs" in done.stderr and f"edgekit infer {path} --input X.npz" in done.stderr
    assert not (tmp_path / "build").exists()
    done = _edgekit("quantize", keras, "-o", tmp_path / "q.ek")
    assert done.returncode == 2 and f"{keras.name}: the model takes 2 inputs" in done.stderr
