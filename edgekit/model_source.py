"""Turn what the user names (a zoo name or a model file) into a Graph plus how to feed it.

Suffix decides the importer: .tflite, .onnx, .pt/.pth (a TorchScript module, or the state_dict of
a zoo architecture; see frontend/torch.py), .ek (a saved edgekit graph); Keras files (.keras, .h5)
and SavedModel folders are converted to int8 .tflite by TensorFlow's converter, calibrated on
``calib``, then imported. Float graphs go through the float pass pipeline here, so every later step
sees the same canonical form.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.ir import Graph

SUFFIXES = (".tflite", ".onnx", ".pt", ".pth", ".ek", ".keras", ".h5", ".hdf5")
MAX_MODEL_FILE_BYTES = 2 << 30  # 2 GiB


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes this model's input: resize the shorter side to size / crop_fraction,
    center-crop H x W, then (x/255 - mean) / std (see frontend/images.py)."""

    height: int
    width: int
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    crop_fraction: float = 1.0


@dataclass
class LoadedModel:
    name: str
    graph: Graph
    preprocess: Preprocess | None
    float_graph: Graph | None = None  # the float original of a quantized graph, when known
    calibration: "Calibration | None" = None  # a model quantized while loading (Keras, SavedModel): on what
    random_weights: bool = False  # a zoo architecture built without pretrained weights

    @property
    def is_quantized(self) -> bool:
        """Whether the graph computes in int8: an int8 input, or int8 inside a float interface (TFLite's
        converter default: QUANTIZE first, DEQUANTIZE last), which keeps its own quantization."""
        return is_int8_graph(self.graph)


@dataclass(frozen=True)
class Calibration:
    """What a model quantized while loading (Keras, SavedModel) was calibrated on, chosen as for every
    float model (``api.default_calibration``), so that compile reports it and keeps those inputs as the
    build's test inputs: ``inputs`` is the --calib path or the sample photos, None for synthetic."""

    inputs: object
    description: str
    samples: int

    @property
    def synthetic(self) -> bool:
        return self.inputs is None


def is_int8_graph(graph: Graph) -> bool:
    """Whether any activation of ``graph`` is int8 (see ``LoadedModel.is_quantized``)."""
    return any(tensor.dtype == "int8" and not tensor.is_constant for tensor in graph.tensors.values())


def _default_preprocess(graph: Graph) -> Preprocess | None:
    """Image models (NHWC with 1 or 3 channels) are fed plain [0, 1] pixels unless told otherwise."""
    shape = graph.tensors[graph.inputs[0]].shape
    if len(shape) == 4 and shape[3] in (1, 3):
        return Preprocess(shape[1], shape[2])
    return None


def load_model(source: str, resolution: int | None = None, width: float | None = None,
               num_classes: int | None = None, pretrained: bool | None = None, calib: str | None = None
               ) -> LoadedModel:
    """The model ``source`` names: a zoo name (with its options) or a model file (see the module doc).
    ``calib`` (images or .npy) calibrates models that are quantized while loading (Keras, SavedModel).

    Every file goes through its importer's checks (frontend/model_checks.py): a corrupt or hostile
    file is one ModelFileError; an unsupported op or attribute is reported with the file's name first."""
    from edgekit.frontend.keras import is_tensorflow_model

    path = Path(source)
    if path.is_dir() and is_tensorflow_model(path):
        return _load_tensorflow(path, calib)
    if path.suffix.lower() not in SUFFIXES:
        _check_zoo_name(source)
        return _load_zoo(source, resolution, width, num_classes, pretrained)
    _check_model_file(path)
    try:
        return _load_file(path, resolution, width, num_classes, calib)
    except UnsupportedOpError as error:  # importers and passes name the op and node; the file goes first
        if str(error).startswith(f"{path.name}:"):
            raise
        raise type(error)(f"{path.name}: {error}") from None


def _load_file(path: Path, resolution, width, num_classes, calib) -> LoadedModel:
    from edgekit.frontend.keras import is_tensorflow_model
    from edgekit.passes import FLOAT_PIPELINE, INT8_PIPELINE, run_pipeline

    suffix = path.suffix.lower()
    if is_tensorflow_model(path):
        return _load_tensorflow(path, calib)
    if suffix in (".pt", ".pth"):
        return _load_torch(path, resolution, width, num_classes)
    graph, preprocess = _import_file(path, suffix)
    if suffix == ".onnx":
        graph = run_pipeline(graph)
    elif suffix == ".tflite":
        graph = run_pipeline(graph, INT8_PIPELINE if is_int8_graph(graph) else FLOAT_PIPELINE)
    return LoadedModel(path.stem, graph, preprocess or _default_preprocess(graph))


def _check_model_file(path: Path) -> None:
    """A model path must be a regular file of a sane size (not a folder, device, pipe or dangling link)."""
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file; give the model file inside it")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file (a device, pipe or socket); give a model file")
    size = path.stat().st_size
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelFileError(f"{path} is {size:,} B, over the {MAX_MODEL_FILE_BYTES:,} B edgekit reads; "
                             "a model for a microcontroller is far smaller")


def _import_file(path: Path, suffix: str):
    """(graph, preprocess or None) from a .tflite, .onnx or .ek file, checked."""
    from edgekit.frontend.model_checks import check_imported_graph

    preprocess = None
    if suffix == ".tflite":
        from edgekit.frontend.tflite import import_tflite

        graph = import_tflite(path)
    elif suffix == ".onnx":
        from edgekit.frontend.onnx import import_onnx

        graph = import_onnx(path)
    else:
        from edgekit.ir.serialize import read_graph_file

        graph, saved = read_graph_file(path)
        preprocess = _saved_preprocess(saved, path)
    check_imported_graph(graph, path)
    return graph, preprocess


def _saved_preprocess(saved, path: Path) -> Preprocess | None:
    """The preprocessing a .ek file keeps (see ir/serialize.py), checked."""
    if saved is None:
        return None

    def triple(value) -> bool:
        return value is None or (isinstance(value, (list, tuple)) and len(value) == 3 and all(
            isinstance(c, (int, float)) and math.isfinite(c) for c in value))

    try:
        pre = Preprocess(**saved)
        valid = (all(isinstance(v, int) and 0 < v <= 8192 for v in (pre.height, pre.width))
                 and triple(pre.mean) and triple(pre.std) and (pre.std is None or min(pre.std) > 0)
                 and isinstance(pre.crop_fraction, (int, float)) and 0 < pre.crop_fraction <= 1)
    except TypeError:
        valid = False
    if not valid:
        raise ModelFileError(f"{path}: its preprocessing {saved} is not valid; save the model again")
    return Preprocess(pre.height, pre.width, tuple(pre.mean) if pre.mean else None,
                      tuple(pre.std) if pre.std else None, float(pre.crop_fraction))


def _load_torch(path: Path, resolution, width, num_classes) -> LoadedModel:
    from edgekit.frontend.torch import import_torch_module, load_torch_file
    from edgekit.passes import run_pipeline
    from edgekit.zoo import ZooModel, check_resolution

    loaded = load_torch_file(path, resolution, width, num_classes)
    if isinstance(loaded, ZooModel):
        return _zoo_loaded(path.stem, loaded)
    size = check_resolution(resolution or 224)
    graph = run_pipeline(import_torch_module(loaded, (1, 3, size, size)))
    return LoadedModel(path.stem, graph, _default_preprocess(graph))


def _check_zoo_name(source: str) -> None:
    """A source without a model suffix must be a zoo name, not a file or path of another kind."""
    from edgekit.zoo import zoo_entry

    if Path(source).exists() or "/" in source:
        raise ModelFileError(f"{source}: unknown model format; expected a zoo name, a SavedModel folder or one of "
                             f"{', '.join(SUFFIXES)}")
    zoo_entry(source)


def model_label(source: str, resolution: int | None = None, width: float | None = None) -> str:
    """The name a model's products get (the default build folder): a file's stem, or zoo name-width-resolution.
    Cheap, and raises for a bad name as load_model would, so it can run before any work."""
    from edgekit.zoo import zoo_entry

    from edgekit.frontend.keras import is_tensorflow_model

    path = Path(source)
    if path.suffix.lower() in SUFFIXES:
        return path.stem
    if path.is_dir() and is_tensorflow_model(path):
        return path.name
    _check_zoo_name(source)
    return f"{source}-{width or 1.0}-{resolution or zoo_entry(source).options['resolution']}"


def _load_zoo(name, resolution, width, num_classes, pretrained) -> LoadedModel:
    from edgekit.zoo import load_zoo_model

    zoo = load_zoo_model(name, resolution=resolution, width=width, num_classes=num_classes, pretrained=pretrained)
    return _zoo_loaded(model_label(name, resolution, width), zoo)


def _zoo_loaded(label: str, zoo) -> LoadedModel:
    """A zoo architecture (built by name, or from a state_dict) with its preprocessing."""
    from edgekit.frontend.torch import import_torch_module
    from edgekit.passes import run_pipeline

    size = zoo.resolution
    graph = run_pipeline(import_torch_module(zoo.module, (1, 3, size, size)))
    graph.name = zoo.name
    return LoadedModel(label, graph, Preprocess(size, size, zoo.mean, zoo.std, zoo.crop_fraction),
                       random_weights=not zoo.pretrained)


def _load_tensorflow(path: Path, calib: str | None) -> LoadedModel:
    """Keras or SavedModel: a float .tflite first (the float reference, and the input shape for the
    calibration samples), then the int8 .tflite calibrated on them; both converted by TensorFlow."""
    from edgekit.api import SYNTHETIC_CALIBRATION_SAMPLES, default_calibration, synthetic_samples
    from edgekit.frontend.keras import convert_to_tflite
    from edgekit.frontend.model_checks import check_imported_graph
    from edgekit.frontend.tflite import import_tflite
    from edgekit.passes import FLOAT_PIPELINE, INT8_PIPELINE, run_pipeline
    from edgekit.samples import load_inputs
    from edgekit.scratch import scratch_folder

    def imported(tflite: Path) -> Graph:
        graph = import_tflite(tflite)
        check_imported_graph(graph, path)
        return graph

    name = path.stem if path.is_file() else path.name
    with scratch_folder("tf") as work:
        float_graph = run_pipeline(imported(convert_to_tflite(path, work / f"{name}.tflite")), FLOAT_PIPELINE)
        float_model = LoadedModel(name, float_graph, _default_preprocess(float_graph))
        source, description = default_calibration(float_model, calib)  # --calib, else sample photos for images
        samples = load_inputs(source, float_model, for_float=True) if source is not None else synthetic_samples(
            float_graph, SYNTHETIC_CALIBRATION_SAMPLES)
        graph = run_pipeline(imported(convert_to_tflite(path, work / f"{name}.tflite", samples)), INT8_PIPELINE)
    return LoadedModel(name, graph, float_model.preprocess, float_graph, Calibration(source, description, len(samples)))
