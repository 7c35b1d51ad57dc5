"""Small TFLite models built by the tests: a TensorFlow function per op, converted with TensorFlow's
TFLiteConverter to full-integer int8 (calibrated on photos), with int8 or float32 I/O.

Each model reads a 16x16 RGB image, so it runs on real photos (../shared/data/images) as well as on
random int8 inputs. Building one takes a fraction of a second; files go to pytest's tmp dirs.
"""

import os
from pathlib import Path

import numpy as np
import pytest

IMAGE_SHAPE = (1, 16, 16, 3)
TFLM_ARENA_BYTES = 1 << 20  # the runtime's default is too small for the float outputs of the resize cases


def tensorflow():
    """TensorFlow, or a skip naming the extra that installs it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow", reason="pip install 'edgekit[tf]'")


def photos(data_dir: Path, shape=IMAGE_SHAPE) -> np.ndarray:
    """The shared photos as float images in [0, 1] of ``shape`` (N stacked)."""
    from edgekit.frontend.images import load_image

    return np.stack([load_image(path, shape[1]).reshape(shape[1:]) for path in sorted((data_dir / "images").iterdir())])


def convert(fn, path: Path, calibration: np.ndarray, int8_io: bool) -> Path:
    """Write ``fn`` (float32 [1, H, W, C] -> tensors) as a full-integer int8 .tflite at ``path``."""
    tf = tensorflow()
    spec = tf.TensorSpec((1,) + calibration.shape[1:], tf.float32)
    concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[np.newaxis].astype(np.float32)] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def tflm_outputs(path: Path, inputs, count: int = 1) -> list[list[np.ndarray]]:
    """TFLite Micro's first ``count`` outputs, in the model's order, for each input."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path), arena_size=TFLM_ARENA_BYTES)
    results = []
    for x in inputs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        results.append([interpreter.get_output(i).copy() for i in range(count)])
        interpreter.reset()
    return results
