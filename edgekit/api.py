"""The Python API that the CLI wraps: inspect, quantize, infer, compile, run, report.

Each function takes plain arguments and returns a result object; nothing here prints.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.model_source import LoadedModel, load_model

SYNTHETIC_CALIBRATION_SAMPLES = 4


def inspect(source: str, **options):
    from edgekit.inspect_model import summarize

    return summarize(load_model(source, **options).graph)


SYNTHETIC_WARNING = ("calibrated on synthetic inputs (no --calib, and the model does not take 3-channel images): "
                     "accuracy figures are meaningless; pass --calib DIR with real inputs")


@dataclass
class QuantizeResult:
    model: LoadedModel  # .graph is the int8 graph, .float_graph the original
    scheme: object
    calibration_samples: int
    synthetic_calibration: bool
    layer_errors: list
    top1_agreement: float | None
    calibration: object = None  # what it was calibrated on: the --calib path, a list of photos, or None (synthetic)
    calibration_source: str = ""  # the same, in words, for the report


def synthetic_samples(graph, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shape = graph.tensors[graph.inputs[0]].shape
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def default_calibration(model: LoadedModel, calib) -> tuple[object, str]:
    """What a float model is calibrated on, and that in words: ``calib`` when given; else, for a model
    that takes 3-channel images, the sample photographs installed packages ship (sample_photos.py);
    else None, which means synthetic inputs."""
    from edgekit.sample_photos import describe, sample_photos

    if calib:
        return calib, f"--calib {calib}"
    shape = model.graph.tensors[model.graph.inputs[0]].shape
    photos = sample_photos() if model.preprocess is not None and shape[-1] == 3 else []
    if photos:
        return photos, describe(photos)
    return None, f"{SYNTHETIC_CALIBRATION_SAMPLES} synthetic inputs (Gaussian noise)"


def quantize(model: LoadedModel, calib: str | None, scheme_name: str = "int8", progress=None) -> QuantizeResult:
    """Calibrate on ``calib`` (images or .npy), else on ``default_calibration``, and convert."""
    from edgekit.quantize.calibrate import calibrate
    from edgekit.quantize.compare import compare_layers
    from edgekit.quantize.convert import quantize_graph
    from edgekit.quantize.scheme import load_scheme
    from edgekit.samples import load_inputs

    if model.is_quantized:
        raise EdgekitError(f"{model.name} is already int8; it needs no quantization")
    scheme = load_scheme(scheme_name)
    float_graph = model.graph
    source, description = default_calibration(model, calib)
    samples = load_inputs(source, model, for_float=True) if source is not None else synthetic_samples(
        float_graph, SYNTHETIC_CALIBRATION_SAMPLES)
    ranges = calibrate(float_graph, samples, scheme, progress=progress)
    int8_graph = quantize_graph(float_graph, ranges, scheme)
    if scheme.bias_correction:
        from edgekit.quantize.bias_correction import correct_bias, input_channel_means

        correct_bias(float_graph, int8_graph, input_channel_means(float_graph, samples))
    quantized = LoadedModel(model.name, int8_graph, model.preprocess, float_graph)
    errors = compare_layers(float_graph, int8_graph, samples[:4])
    agreement = top1_agreement(quantized, samples) if source is not None else None
    return QuantizeResult(quantized, scheme, len(samples), source is None, errors, agreement, source, description)


def top1_agreement(model: LoadedModel, float_samples: list[np.ndarray]) -> float:
    """Fraction of samples whose int8 argmax equals the float model's argmax."""
    from edgekit.ir.interpreter import run_graph

    graph, float_graph = model.graph, model.float_graph
    quant = graph.tensors[graph.inputs[0]].quant
    agree = 0
    for x in float_samples:
        ref = run_graph(float_graph, [x], mode="float")[float_graph.outputs[0]]
        got = run_graph(graph, [quant.quantize(x)], mode="int8")[graph.outputs[0]]
        agree += int(np.argmax(ref) == np.argmax(got))
    return agree / len(float_samples)


def infer(model: LoadedModel, input_path: str, mode: str | None = None) -> list[np.ndarray]:
    """Run ``model`` on the one input in ``input_path``; the outputs in the model's output order.

    With no ``mode`` an int8 model runs as TFLite Micro runs it (exact integer arithmetic, in the
    model's own input and output dtypes: float32 for a float interface), a float model in float."""
    from edgekit.ir.interpreter import run_graph
    from edgekit.samples import load_inputs

    mode = mode or ("int8" if model.is_quantized else "float")
    if mode == "int8" and not model.is_quantized:
        raise EdgekitError(f"{model.name} is a float model; --int8 needs an int8 model "
                           "(an int8 .tflite, or a .ek from `edgekit quantize`)")
    inputs = load_inputs(input_path, model, for_float=(mode == "float"))
    if len(inputs) != 1:
        raise EdgekitError(f"{input_path} holds {len(inputs)} inputs; infer takes one")
    outputs = run_graph(model.graph, inputs, mode=mode)
    return [outputs[name] for name in model.graph.outputs]


def refuse_overwrite(path, force: bool) -> None:
    """The errors for an output file that cannot or must not be written (exists without --force, is a
    folder, its folder is not writable); call it before the work, not after."""
    from edgekit.build_folder import check_writable_parent

    path = Path(path)
    if path.is_dir():
        raise EdgekitError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise EdgekitError(f"{path} exists; pass --force to replace it")
    check_writable_parent(path)


def write_new_file(path: Path, write, force: bool) -> None:
    """Write via a temporary file in the same folder, then move into place; refuse to overwrite."""
    path = Path(path)
    refuse_overwrite(path, force)
    temporary = path.with_name(f".{path.name}.edgekit-tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise EdgekitError(f"cannot write {path} ({error.strerror or error}); choose another file") from None
    except BaseException:  # an error, Ctrl-C or SIGTERM (see cli.py) leaves no half-written file
        temporary.unlink(missing_ok=True)
        raise
