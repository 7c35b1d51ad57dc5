"""`edgekit run`: run a build folder's firmware in QEMU and check it against both references.

(a) the integer reference interpreter, byte for byte: the firmware must reproduce it exactly;
(b) the float model (when the build has one): top-1 agreement, cosine and max abs error of the
dequantized firmware outputs.
"""

from dataclasses import dataclass, field

import numpy as np

from edgekit.build_folder import BuildFolder
from edgekit.io_records import input_records, output_record_bytes, split_output_records
from edgekit.ir.interpreter import run_graph
from edgekit.model_source import LoadedModel, Preprocess
from edgekit.progress import QUIET


@dataclass
class RunResult:
    bit_exact: bool
    inputs: int
    mismatches: int
    top1_agreement: float | None
    cosine: float | None
    max_abs_error: float | None
    peak_sram_bytes: int
    arena_bytes: int
    stack_bytes: int
    other_static_ram_bytes: int
    flash_bytes: int
    external_flash_bytes: int
    instructions_per_inference: int
    real_inputs: bool = True  # False: the random inputs of a build calibrated without data (no accuracy figure)
    layer_instructions: list[int] = field(default_factory=list)  # per graph node (patched: summed over patches)
    patch_step_instructions: list[list[int]] | None = None  # patched: per patch, per stage node
    outputs: list[np.ndarray] | None = None  # per graph output, its N values stacked, in its dtype

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "outputs"}


def _load_build(folder: BuildFolder):
    manifest = folder.manifest()
    pre = manifest.get("preprocess")
    model = LoadedModel(manifest["model"], folder.load_graph(), Preprocess(**pre) if pre else None,
                        folder.load_float_graph())
    return manifest, model


def _float_metrics(model: LoadedModel, inputs_int8, float_inputs, outputs_int8, advance=lambda: None):
    """top-1 agreement, cosine and max abs error of the first output against the float model
    (``advance()`` after each input)."""
    graph = model.graph
    out_quant = graph.tensors[graph.outputs[0]].quant
    in_quant = graph.tensors[graph.inputs[0]].quant
    agree, cosines, max_abs = 0, [], 0.0
    for i, q in enumerate(inputs_int8):
        x = float_inputs[i] if float_inputs is not None else in_quant.dequantize(q)
        ref = run_graph(model.float_graph, [x], mode="float")[model.float_graph.outputs[0]].ravel()
        got = outputs_int8[i].ravel() if out_quant is None else out_quant.dequantize(outputs_int8[i]).ravel()
        agree += int(np.argmax(ref) == np.argmax(got))
        cosines.append(float(ref @ got / max(np.linalg.norm(ref) * np.linalg.norm(got), 1e-30)))
        max_abs = max(max_abs, float(np.max(np.abs(ref - got))))
        advance()
    return agree / len(inputs_int8), float(np.mean(cosines)), max_abs


def fold_marks(marks: list[int], manifest: dict) -> tuple[list[int], list[list[int]] | None]:
    """Instructions per graph node from the ek_mark() intervals of one inference, and for a patched
    build the stage's intervals per patch. ``mark_nodes`` (edgekit.json) gives each interval's node."""
    mark_nodes = manifest.get("mark_nodes") or list(range(len(marks)))
    if len(mark_nodes) != len(marks):
        from edgekit.errors import FirmwareFaultError

        raise FirmwareFaultError(f"the firmware marked {len(marks)} steps, the build's schedule has {len(mark_nodes)}")
    per_node = [0] * len(manifest["layers"])
    for node, count in zip(mark_nodes, marks):
        per_node[node] += int(count)
    patch = manifest.get("patch") or {}
    if not patch.get("chosen"):
        return per_node, None
    stage = len(patch["stage_nodes"])
    steps = [int(count) for count in marks[:stage * patch["patch_count"]]]
    return per_node, [steps[i:i + stage] for i in range(0, len(steps), stage)]


def _same_bytes(expected: dict, graph, outputs: list[np.ndarray], index: int) -> bool:
    """Whether input ``index``'s firmware outputs equal the reference's byte for byte (float outputs too)."""
    return all(np.ascontiguousarray(expected[name]).tobytes() == np.ascontiguousarray(output[index]).tobytes()
               for name, output in zip(graph.outputs, outputs))


def run_build(build_dir, inputs=None, timeout_s: float = 600.0, progress=QUIET) -> RunResult:
    """Run the build's firmware in QEMU on ``inputs`` (default: its test inputs) and check its outputs
    against the integer reference (byte for byte) and the float model; ``progress``: progress.Stages."""
    from edgekit.emulate import run_firmware
    from edgekit.samples import load_inputs

    folder = BuildFolder(build_dir)
    manifest, model = _load_build(folder)
    graph = model.graph
    float_inputs = None
    real_inputs = True
    embedded = manifest.get("embedded_test_inputs", 0)  # a board image runs the inputs in its flash
    if inputs is not None and embedded:
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"{folder} is a {manifest['target']} image: it runs the {embedded} test inputs "
                           "compiled into it; drop --inputs, or compile again with --calib to embed others")
    if inputs is None:
        batch, float_inputs = folder.test_inputs(embedded or None)
        real_inputs = not (manifest.get("calibration") or {}).get("synthetic", False)
    else:
        batch = np.stack(load_inputs(inputs, model))
        if model.float_graph is not None:  # images and float .npy keep their real values; int8 ones dequantize
            float_inputs = load_inputs(inputs, model, for_float=True)
    emulated = run_firmware(folder.elf, folder.target(), input_records(graph, batch), output_record_bytes(graph),
                            timeout_s=timeout_s * len(batch), progress=progress)  # --timeout: per inference
    if not emulated.ok:
        from edgekit.errors import FirmwareFaultError

        raise FirmwareFaultError(f"firmware stopped with exit code {emulated.exit_code} ({emulated.exit_reason}) "
                                f"on {manifest['target']}; see {folder}")
    outputs = split_output_records(graph, emulated.outputs)
    with progress.stage("integer reference", len(batch)) as advance:
        mismatches = 0
        for i, x in enumerate(batch):
            mismatches += int(not _same_bytes(run_graph(graph, [x], mode="int8"), graph, outputs, i))
            advance()
    top1 = cos = max_abs = None
    if model.float_graph is not None:
        with progress.stage("float reference", len(batch)) as advance:
            top1, cos, max_abs = _float_metrics(model, batch, float_inputs, outputs[0], advance)
    if not real_inputs:
        top1 = None  # agreement on random inputs says nothing about accuracy
    sizes = manifest["sizes"]
    stack = emulated.stack_high_water_bytes
    static_ram = manifest["static_ram_bytes"] - sizes["stack"] - sizes["heap"]
    result = RunResult(
        bit_exact=mismatches == 0, inputs=len(batch), mismatches=mismatches, top1_agreement=top1, cosine=cos,
        max_abs_error=max_abs, peak_sram_bytes=static_ram + stack, arena_bytes=manifest["arena_bytes"],
        stack_bytes=stack, other_static_ram_bytes=static_ram - manifest["arena_bytes"],
        flash_bytes=manifest["flash_bytes"], external_flash_bytes=sizes["extflash"],
        instructions_per_inference=int(max(emulated.instructions_per_inference)), real_inputs=real_inputs,
        outputs=outputs,
    )
    if emulated.marks:
        result.layer_instructions, result.patch_step_instructions = fold_marks(emulated.marks[0], manifest)
    folder.save_run(result.to_json())
    return result
