"""Keras models (``.keras``, ``.h5``) and SavedModel folders -> ``.tflite``, with TensorFlow's converter.

edgekit does not map Keras layers itself: TensorFlow's TFLiteConverter lowers the model to TFLite
builtin ops (full-integer int8, calibrated on the samples it is given, with int8 input and output;
or float32 when no samples are given) and the TFLite importer takes it from there, so a model runs
exactly as TFLite Micro would run the converter's output.

Loading a Keras file must not run code from it: the model config is read first (JSON inside the
``.keras`` zip, or the ``model_config`` attribute of the HDF5 file) and any Lambda layer, whose
Python code travels inside the file, is refused; the model is then loaded with ``safe_mode=True``
and without compiling it. A SavedModel holds TensorFlow graphs, not Python, and is converted as is.
"""

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError, ModelFileError, UnsupportedOpError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_tensorflow_model(path: Path) -> bool:
    """A Keras file, or a SavedModel folder (it holds ``saved_model.pb``)."""
    return path.suffix.lower() in KERAS_SUFFIXES or (path.is_dir() and (path / "saved_model.pb").is_file())


def _tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow
    except ImportError:
        raise EdgekitError("Keras and SavedModel models need TensorFlow: pip install 'edgekit[tf]' "
                           "(or convert the model to .tflite yourself)") from None
    return tensorflow


def _keras_config(path: Path) -> dict:
    """The model's architecture as saved, read without deserializing anything."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            if config is None:
                raise ModelFileError(f"{path}: this HDF5 file holds weights only, no model; save the whole model "
                                     "(model.save('model.keras'))")
            return json.loads(config.decode() if isinstance(config, bytes) else config)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path} is not a readable Keras model ({exc}); re-save it with model.save()") from None


def _layers(config) -> list[tuple[str, str]]:
    """(class name, layer name) of every layer in a (possibly nested) Keras config."""
    found = []
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            found.append((config["class_name"], str(config["config"].get("name", "?"))))
        for value in config.values():
            found += _layers(value)
    elif isinstance(config, list):
        for value in config:
            found += _layers(value)
    return found


def constraint_no_lambda_layers(path: Path) -> None:
    """Lambda layers carry Python code inside the file; edgekit does not run code from model files."""
    lambdas = [name for class_name, name in _layers(_keras_config(path)) if class_name == "Lambda"]
    if lambdas:
        raise UnsupportedOpError(f"{path.name}: Lambda layer {lambdas[0]!r} holds Python code, which edgekit does not "
                                 "run from model files; replace it with built-in layers or a registered custom "
                                 "layer, or convert the model to .tflite yourself")


def _load_keras(path: Path):
    constraint_no_lambda_layers(path)
    tf = _tensorflow()
    try:
        return tf.keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path.name}: Keras cannot load this model safely ({first_line}); custom layers must be "
                             "built-in or registered, and the file must come from model.save()") from None


def _converter(path: Path):
    """A converter for the model traced at batch 1: with a free batch size some layers (Dense on a 4-D
    tensor) become SHAPE/Tensordot arithmetic, where a static shape folds them to plain ops."""
    tf = _tensorflow()
    if path.is_dir():
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures.get("serving_default")
        if signature is None:
            raise ModelFileError(f"{path.name}: the SavedModel has no 'serving_default' signature; export it with one")
        specs = signature.structured_input_signature[1]
        if len(specs) != 1:
            raise UnsupportedOpError(f"{path.name}: the SavedModel takes {len(specs)} inputs; edgekit compiles "
                                     "models with one input")
        (key, spec), = specs.items()
        fn = tf.function(lambda x: signature(**{key: x}))
        concrete = fn.get_concrete_function(tf.TensorSpec(_batch_one(path, spec.shape), spec.dtype))
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
    model = _load_keras(path)
    if len(model.inputs) != 1:
        raise UnsupportedOpError(f"{path.name}: the model takes {len(model.inputs)} inputs; edgekit compiles models "
                                 "with one input")
    spec = model.inputs[0]
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(_batch_one(path, spec.shape), spec.dtype))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete])  # without the model: weights are frozen


def _batch_one(path: Path, shape) -> tuple[int, ...]:
    dims = list(shape)
    if any(d is None for d in dims[1:]):
        raise UnsupportedOpError(f"{path.name}: the input shape {tuple(dims)} has free dimensions besides the batch; "
                                 "give the model a fixed input size")
    return (1, *dims[1:])


def convert_to_tflite(path: Path, destination: Path, samples: list[np.ndarray] | None = None) -> Path:
    """Write the model at ``path`` as ``.tflite`` to ``destination``: full-integer int8 with int8 I/O
    calibrated on ``samples`` (float inputs of the model's input shape), or float32 without samples."""
    tf = _tensorflow()
    converter = _converter(path)
    if samples is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.asarray(x, np.float32)] for x in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        destination.write_bytes(converter.convert())
    except Exception as exc:  # TensorFlow raises ConverterError, RuntimeError or ValueError with long logs
        lines = [line for line in str(exc).splitlines() if "error" in line.lower()] or [type(exc).__name__]
        raise UnsupportedOpError(f"{path.name}: TensorFlow's TFLite converter failed: {lines[0].strip()[:300]}; "
                                 "edgekit needs a model made of TFLite builtin int8 ops") from None
    return destination
