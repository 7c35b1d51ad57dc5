"""Turn what the user names (a zoo name or a model file) into a Graph plus how to feed it.

Suffix decides the importer: .tflite, .onnx, .pt (a pickled torch module), .ek (a saved edgekit
graph). Float graphs go through the float pass pipeline here, so every later step sees the same
canonical form.
"""

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelFileError
from edgekit.ir import Graph

SUFFIXES = (".tflite", ".onnx", ".pt", ".pth", ".ek")


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

    @property
    def is_quantized(self) -> bool:
        """Whether the graph computes in int8: an int8 input, or int8 inside a float interface (TFLite's
        converter default: QUANTIZE first, DEQUANTIZE last), which keeps its own quantization."""
        return is_int8_graph(self.graph)


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
               num_classes: int | None = None) -> LoadedModel:
    from edgekit.passes import FLOAT_PIPELINE, INT8_PIPELINE, run_pipeline

    path = Path(source)
    if path.suffix.lower() not in SUFFIXES:
        if path.exists() or "/" in source:
            raise ModelFileError(f"{source}: unknown model format; expected a zoo name or one of "
                                 f"{', '.join(SUFFIXES)}")
        return _load_zoo(source, resolution, width, num_classes)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from edgekit.frontend.tflite import import_tflite

        graph = import_tflite(path)
        graph = run_pipeline(graph, INT8_PIPELINE if is_int8_graph(graph) else FLOAT_PIPELINE)
        return LoadedModel(path.stem, graph, _default_preprocess(graph))
    if suffix == ".ek":
        from edgekit.ir.serialize import load_graph

        graph = load_graph(path)
        return LoadedModel(path.stem, graph, _default_preprocess(graph))
    if suffix == ".onnx":
        from edgekit.frontend.onnx import import_onnx

        graph = run_pipeline(import_onnx(path))
        return LoadedModel(path.stem, graph, _default_preprocess(graph))
    from edgekit.frontend.torch import import_torch_module, load_torch_file

    size = resolution or 224
    graph = run_pipeline(import_torch_module(load_torch_file(path), (1, 3, size, size)))
    return LoadedModel(path.stem, graph, _default_preprocess(graph))


def _load_zoo(name, resolution, width, num_classes) -> LoadedModel:
    from edgekit.frontend.torch import import_torch_module
    from edgekit.passes import run_pipeline
    from edgekit.zoo import load_zoo_model

    zoo = load_zoo_model(name, resolution=resolution, width=width, num_classes=num_classes)
    size = zoo.resolution
    graph = run_pipeline(import_torch_module(zoo.module, (1, 3, size, size)))
    graph.name = name
    label = f"{name}-{width or 1.0}-{size}"
    return LoadedModel(label, graph, Preprocess(size, size, zoo.mean, zoo.std, zoo.crop_fraction))
