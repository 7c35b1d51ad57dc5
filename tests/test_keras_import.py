"""Keras files (.keras, .h5) and SavedModel folders: converted by TensorFlow's TFLiteConverter to
int8 (calibrated on --calib), imported, and close to what Keras itself predicts; Lambda layers are
refused before any of the file is deserialized."""

import numpy as np
import pytest
from tflite_models import photos, tensorflow

from edgekit.errors import EdgekitError, ModelFileError, UnsupportedOpError
from edgekit.ir.interpreter import run_graph
from edgekit.model_source import load_model, model_label

SIZE = 24


def _keras_model(seed: int = 5):
    tf = tensorflow()
    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    x = tf.keras.Input((SIZE, SIZE, 3))
    y = layers.Conv2D(8, 3, strides=2, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("hard_swish")(y)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    gate = layers.Dense(8, activation="sigmoid")(layers.GlobalAveragePooling2D(keepdims=True)(y))
    y = layers.Multiply()([y, gate])
    y = layers.GlobalAveragePooling2D()(y)
    y = layers.Dense(5, activation="softmax")(y)
    return tf.keras.Model(x, y)


@pytest.fixture(scope="module")
def keras_model():
    return _keras_model()


def _int8_matches_keras(loaded, model, images):
    graph = loaded.graph
    q_in = graph.tensors[graph.inputs[0]].quant
    q_out = graph.tensors[graph.outputs[0]].quant
    assert graph.tensors[graph.inputs[0]].dtype == "int8" and loaded.float_graph is not None
    want = model(images, training=False).numpy()
    got = np.concatenate([q_out.dequantize(run_graph(graph, [q_in.quantize(x[np.newaxis])])[graph.outputs[0]])
                          for x in images])
    assert np.abs(got - want).max() < 0.05, "int8 probabilities differ from Keras' by more than 0.05"
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.8


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_file_is_converted_calibrated_and_close_to_keras(suffix, keras_model, data_dir, tmp_path):
    path = tmp_path / f"tiny{suffix}"
    keras_model.save(path)
    loaded = load_model(str(path), calib=str(data_dir / "images"))
    assert loaded.name == "tiny" and loaded.preprocess.height == SIZE
    _int8_matches_keras(loaded, keras_model, photos(data_dir, (1, SIZE, SIZE, 3)))


def test_saved_model_folder_is_converted(keras_model, data_dir, tmp_path):
    folder = tmp_path / "exported"
    keras_model.export(folder)
    loaded = load_model(str(folder), calib=str(data_dir / "images"))
    assert model_label(str(folder)) == loaded.name == "exported"
    _int8_matches_keras(loaded, keras_model, photos(data_dir, (1, SIZE, SIZE, 3)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_is_refused_by_name(suffix, tmp_path):
    tf = tensorflow()
    x = tf.keras.Input((4, 4, 3))
    y = tf.keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(x)
    path = tmp_path / f"lambda{suffix}"
    tf.keras.Model(x, y).save(path)
    with pytest.raises(UnsupportedOpError, match=rf"^lambda{suffix}: Lambda layer 'doubler' holds Python code") as info:
        load_model(str(path))
    assert "\n" not in str(info.value)


def test_weights_only_h5_and_corrupt_keras_files_are_model_file_errors(keras_model, tmp_path):
    weights = tmp_path / "only.weights.h5"
    keras_model.save_weights(weights)
    with pytest.raises(ModelFileError, match="holds weights only"):
        load_model(str(weights))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable Keras model"):
        load_model(str(broken))


def test_missing_keras_file_and_plain_folder_are_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(str(tmp_path / "nope.keras"))
    with pytest.raises(EdgekitError, match="SavedModel folder"):
        load_model(str(tmp_path))


def test_without_calib_keras_uses_the_default_calibration_and_says_so(keras_model, tmp_path):
    """No --calib: the sample photographs, as for every float image model (never noise); the compile
    report names them, and they are the build's test inputs."""
    from edgekit.compiler import compile_model
    from edgekit.sample_photos import sample_photos
    from edgekit.samples import load_inputs

    path = tmp_path / "tiny.keras"
    keras_model.save(path)
    loaded = load_model(str(path))
    assert not loaded.calibration.synthetic and loaded.calibration.inputs == sample_photos()
    assert loaded.calibration.samples == len(sample_photos())
    build = compile_model(str(path), "cortex-m7", output=tmp_path / "build")
    calibration = build.manifest["calibration"]
    assert not calibration["synthetic"] and calibration["samples"] == len(sample_photos())
    assert "scikit-image" in calibration["source"] and "TensorFlow" in calibration["source"]
    kept = np.load(build.build_dir / "test_inputs.npy")
    np.testing.assert_array_equal(kept[0], load_inputs(sample_photos()[:1], loaded)[0])


def test_keras_model_without_image_input_is_calibrated_synthetically_with_the_warning(tmp_path):
    import subprocess
    import sys

    tf = tensorflow()
    x = tf.keras.Input((16,))
    model = tf.keras.Model(x, tf.keras.layers.Dense(4)(x))
    path = tmp_path / "vector.keras"
    model.save(path)
    assert load_model(str(path)).calibration.synthetic
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "compile", str(path), "--target", "cortex-m7",
                           "-o", str(tmp_path / "build")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "synthetic" in done.stderr and "meaningless" in done.stderr
