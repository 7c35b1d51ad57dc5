"""The Python API that the CLI wraps: inspect, quantize, infer, compile, run, report.

Each function takes plain arguments and returns a result object; nothing here prints.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.model_source import LoadedModel
from edgekit.progress import QUIET

SYNTHETIC_CALIBRATION_SAMPLES = 4


def inspect(model: LoadedModel):
    from edgekit.inspect_model import summarize

    return summarize(model.graph)


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


def quantize(model: LoadedModel, calib: str | None, scheme_name: str = "int8", progress=QUIET) -> QuantizeResult:
    """Calibrate on ``calib`` (images or .npy), else on ``default_calibration``, and convert;
    ``progress`` (progress.Stages) shows the calibration and quantization stages."""
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
    with progress.stage("calibration", len(samples)) as advance:
        ranges = calibrate(float_graph, samples, scheme, progress=advance)
    with progress.stage("quantization"):
        int8_graph = quantize_graph(float_graph, ranges, scheme)
        if scheme.bias_correction:
            from edgekit.quantize.bias_correction import correct_bias, input_channel_means

            correct_bias(float_graph, int8_graph, input_channel_means(float_graph, samples))
        quantized = LoadedModel(model.name, int8_graph, model.preprocess, float_graph,
                                random_weights=model.random_weights)
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
    """Run ``model`` on the one input in ``input_path`` (a model with several inputs: a ``.npz`` with an
    array per input, ``samples.load_input_set``); the outputs in the model's output order.

    With no ``mode`` an int8 model runs as TFLite Micro runs it (exact integer arithmetic, in the
    model's own input and output dtypes: float32 for a float interface), a float model in float."""
    from edgekit.ir.interpreter import run_graph
    from edgekit.samples import load_input_set, load_inputs

    mode = mode or ("int8" if model.is_quantized else "float")
    if mode == "int8" and not model.is_quantized:
        raise EdgekitError(f"{model.name} is a float model; --int8 needs an int8 model "
                           "(an int8 .tflite, or a .ek from `edgekit quantize`)")
    if len(model.graph.inputs) > 1 or str(input_path).lower().endswith(".npz"):
        outputs = run_graph(model.graph, load_input_set(input_path, model, for_float=(mode == "float")), mode=mode)
        return [outputs[name] for name in model.graph.outputs]
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


# -- compile, run, report, flash, monitor: the build-folder commands ------------------------------

@dataclass(frozen=True)
class Report:
    """`edgekit report`: the headline numbers, everything report.json holds, and the text table."""

    model: str
    target: str
    arena_bytes: int
    peak_sram_bytes: int | None  # None until `run` measured the stack
    ram_budget_bytes: int
    flash_bytes: int
    flash_budget_bytes: int
    external_flash_bytes: int
    instructions_per_inference: int | None
    bit_exact: bool | None  # None before a run
    document: dict
    text: str


def compile(model: str, *, target: str | None = None, board: str | None = None, target_file=None, **options):
    """`edgekit compile`: `target` a CPU (an image for its QEMU machine), `board` a board (an image for the
    board itself) or `target_file` your own board file (emulated on its CPU); `options` as
    compiler.compile_model takes them (resolution, calib, patch, output, ...). Returns a compiler.CompileResult."""
    from edgekit.compiler import compile_model

    if sum(where is not None for where in (target, board, target_file)) != 1:
        raise EdgekitError("pass target=CPU (emulated), board=NAME (flashable) or target_file=PATH, exactly one of them")
    return compile_model(model, board or target, target_file=target_file, **options)


def run(build, inputs=None, timeout_s: float = 600.0, progress=QUIET):
    """`edgekit run`: the build's firmware in QEMU, checked against the references; a runner.RunResult."""
    from edgekit.runner import run_build

    return run_build(build, inputs, timeout_s, progress)


def report(build, write: bool = False) -> Report:
    """`edgekit report`; `write` also refreshes report.txt, report.json and memory.png in the build."""
    from edgekit.report import build_report, render_text, write_report

    document = write_report(build) if write else build_report(build)
    verification = document.get("verification") or {}
    return Report(
        model=document["model"], target=document["target"],
        arena_bytes=document["arena_bytes"], peak_sram_bytes=document["peak_sram_bytes"],
        ram_budget_bytes=document["ram_budget_bytes"], flash_bytes=document["flash_bytes"],
        flash_budget_bytes=document["flash_budget_bytes"], external_flash_bytes=document["external_flash_bytes"],
        instructions_per_inference=document["instructions_per_inference"],
        bit_exact=verification.get("bit_exact"), document=document, text=render_text(document),
    )


def flash(build, probe: str | None = None, dry_run: bool = False):
    """`edgekit flash`: a flash.FlashResult, or with `dry_run` the flash.FlashPlan (a probe must be named)."""
    from edgekit.flash import flash_build, flash_plan

    if dry_run:
        if probe is None:
            raise EdgekitError("flash(dry_run=True) needs probe= one of pyocd, openocd, stlink")
        return flash_plan(build, probe)
    return flash_build(build, probe)


def monitor(build, port: str, baud: int | None = None, timeout_s: float = 120.0, on_open=None):
    """`edgekit monitor`: a flashed board's report read from `port`; a monitor.MonitorResult."""
    from edgekit.monitor import monitor_build

    return monitor_build(build, port, baud, timeout_s, on_open)
