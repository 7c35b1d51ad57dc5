"""`edgekit compile`: model -> int8 graph -> memory plan -> C (TVM kernels) -> linked firmware.

Every product is written into a staged build folder (see build_folder.py) that replaces the
destination only when the whole compile succeeded.

``--patch`` picks the schedule: ``fit`` (the default) runs layer by layer when that arena fits the
target's activation budget (its SRAM less ``RUNTIME_RAM_RESERVE``), and otherwise the patched plan
that fits with the least MAC overhead (``search_patch_plan`` with ``fit_bytes``), else the one with
the smallest peak; ``off`` runs layer by layer; ``auto`` searches a split and a patch count with the
smallest peak whose MAC overhead is at most ``--max-patch-overhead`` and falls back to layer by
layer when no patched plan needs less SRAM; ``SPLIT:N`` runs the stage up to node SPLIT's output on
N x N patches (``build_patch_plan``). Patched schedules use in-place depthwise (the firmware runs it
channel by channel), as does the layer-by-layer fallback of ``auto`` and ``fit`` when it helps.
Every schedule carries ``reason``: which plan was chosen and why, for the report.
"""

import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgekit.build import DEFAULT_STACK_BYTES
from edgekit.build_folder import BuildFolder, locked_destination, new_build_id, staged_folder
from edgekit.memory.timeline import render_timeline
from edgekit.errors import DoesNotFitError, EdgekitError, UnsupportedOpError
from edgekit.model_source import LoadedModel, load_model
from edgekit.progress import QUIET

TEST_INPUTS = 4
PATCH_MODE = re.compile(r"off|auto|fit|.+:[0-9]+(:row-major|:serpentine|:column-major)?")
# What --patch fit leaves of the SRAM for everything but the arena: the linker's stack reserve, plus
# the runtime's and the harness's static data and the in-place depthwise planes (1.6 KB and 2 KB for
# MobileNetV2 at 224 px). The linker stays the judge of what fits.
RUNTIME_RAM_RESERVE = DEFAULT_STACK_BYTES + 4096


@dataclass
class CompileResult:
    build_dir: Path
    manifest: dict


@dataclass
class Schedule:
    """The plan the firmware runs: an arena ``plan``, and the patched schedule (or None)."""

    plan: object  # MemoryPlan: the whole arena (for a patched schedule, its memory.arena)
    patches: object | None  # PatchSchedule
    search: object | None = None  # PatchSearch, for --patch auto
    mode: str = "off"
    layer_live_bytes: list[int] = field(default_factory=list)  # per node, layer by layer as --patch off
    layer_arena_bytes: int = 0  # the arena of --patch off
    reason: str = ""  # which plan was chosen and why, in words

    @property
    def peak_bytes(self) -> int:
        return self.plan.arena_bytes

    def live_bytes(self, graph) -> list[int]:
        """Per graph node: activation bytes live at its step (for a stage node, the most over its
        steps on one patch, frame and split tensor included)."""
        if self.patches is None:
            return [step.live_bytes for step in self.plan.steps]
        by_node: dict[str, int] = {}
        for step in self.patches.memory.steps:
            by_node[step.node] = max(by_node.get(step.node, 0), step.live_bytes)
        return [by_node[node.name] for node in graph.nodes]

    def peak(self) -> dict:
        """The step that makes the activation peak and the tensors live there with their bytes (for a
        patched step, the frame, the split tensor and one patch's working buffers)."""
        if self.patches is None:
            step = self.plan.peak_step
            phase, node, live = "layer", step.node, step.live_bytes
            tensors = [(name, self.plan.tensors[name].size) for name in step.tensors]
        else:
            memory = self.patches.memory
            step = memory.peak_step
            phase, node, live = step.phase, step.node, step.live_bytes
            if step.phase == "patch":  # the frame and the split tensor, then one patch's working buffers
                whole = [name for name in memory.arena.steps[0].tensors if name != memory.working_block]
                tensors = [(name, memory.arena.tensors[name].size) for name in whole] + [
                    (f"{name} (patch)", memory.working.tensors[name].size) for name in step.tensors[len(whole):]]
            else:
                tensors = [(name, memory.arena.tensors[name].size) for name in step.tensors]
        return {"phase": phase, "node": node, "live_bytes": live,
                "tensors": [{"tensor": name, "bytes": size} for name, size in tensors]}

    def layer_rows(self, graph) -> list[dict]:
        """Per node: its inspect summary plus the live bytes of this schedule and of layer by layer."""
        from edgekit.inspect_model import summarize

        return [dict(layer.__dict__, live_bytes=live, layer_live_bytes=layer_live) for layer, live, layer_live
                in zip(summarize(graph).layers, self.live_bytes(graph), self.layer_live_bytes)]

    def summary(self) -> dict:
        """Which plan runs and why (edgekit.json's ``schedule``, and compile --json's)."""
        return {"mode": self.mode, "plan": "layer by layer" if self.patches is None else "patched",
                "activation_bytes": self.peak_bytes, "reason": self.reason}

    def to_json(self) -> dict | None:
        """What edgekit.json and the report keep about patching; None when no search or split was made."""
        if self.search is None and self.patches is None:
            return None
        doc = {"mode": self.mode, "layer_by_layer_arena_bytes": self.layer_arena_bytes,
               "search": self.search.to_json() if self.search else None, "chosen": None}
        if self.patches is None:
            return doc
        stage, memory = self.patches.stage, self.patches.memory
        doc["chosen"] = self.patches.to_json()
        doc.update(
            input=("input supplied by callback (ek_model_input_window); frame not counted" if memory.input_by_patch
                   else "input frame in SRAM (the arena)"),
            stage_nodes=[node.name for node in stage.nodes], patch_count=len(stage.patches),
            crops=len(memory.crops), tile_copy=memory.tile is not None,
            patch_steps=[{"node": step.node, "live_bytes": step.live_bytes, "tensors": list(step.tensors)}
                         for step in memory.steps if step.phase == "patch"],
        )
        return doc


def activation_budget(target) -> int:
    """The bytes of activations --patch fit aims for: the target's SRAM less ``RUNTIME_RAM_RESERVE``."""
    return target.ram.length - RUNTIME_RAM_RESERVE


def plan_schedule(graph, patch: str, max_patch_overhead: float, input_by_patch: bool,
                  budget: int | None = None) -> Schedule:
    """The schedule named by ``--patch`` (see the module doc); ``budget`` is --patch fit's."""
    from edgekit.memory import plan_memory
    from edgekit.memory.patch_search import build_patch_plan, search_patch_plan

    layer_plan = plan_memory(graph)
    layer_live = [step.live_bytes for step in layer_plan.steps]
    layer = dict(layer_live_bytes=layer_live, layer_arena_bytes=layer_plan.arena_bytes)
    if patch == "off":
        return Schedule(layer_plan, None, mode="off", reason="layer by layer, as --patch off asks", **layer)
    if patch == "fit" and not input_by_patch and layer_plan.arena_bytes <= budget:
        return Schedule(layer_plan, None, mode="fit", reason=f"layer by layer: its arena of {layer_plan.arena_bytes:,} "
                        f"B fits the activation budget of {budget:,} B, and patches would only add MACs", **layer)
    if patch in ("auto", "fit"):
        search = search_patch_plan(graph, max_patch_overhead, input_by_patch,
                                   fit_bytes=budget if patch == "fit" else None)
        plan = search.chosen.memory.arena if search.chosen else search.baseline
        chosen = replace(search.chosen, lean_kernels=False) if search.chosen and patch == "fit" else search.chosen
        return Schedule(plan, chosen, search, patch, reason=_search_reason(search, layer_plan, graph), **layer)
    chosen = build_patch_plan(graph, patch, input_by_patch)
    return Schedule(chosen.memory.arena, chosen, None, patch, reason=f"split and patch count as --patch {patch} asks",
                    **layer)


def _search_reason(search, layer_plan, graph) -> str:
    """Why the search's plan was chosen, in words."""
    chosen, baseline = search.chosen, search.baseline.arena_bytes
    layer = f"layer by layer needs {layer_plan.arena_bytes:,} B" + (
        f" ({baseline:,} B with in-place writes)" if baseline < layer_plan.arena_bytes else "")
    what = (f"split after {graph.display_name(chosen.stage.split)} on {chosen.stage.n}x{chosen.stage.n} patches "
            f"({chosen.memory.peak_bytes:,} B, "
            f"{chosen.mac_overhead:.1%} more MACs)" if chosen else f"layer by layer ({baseline:,} B)")
    if search.fit_bytes is None:
        bound = f"the smallest peak with at most {search.max_mac_overhead:.0%} more MACs"
        return f"{what}: {bound}" if chosen else f"{what}: no patched plan within {search.max_mac_overhead:.0%} " \
                                                 "more MACs needs less"
    budget = f"the activation budget of {search.fit_bytes:,} B"
    if not search.fits:
        return f"{what}: nothing fits {budget}; this is the smallest peak ({layer})"
    if chosen is None:
        return f"{what}: fits {budget} with in-place writes and recomputes nothing"
    fitting = sum(candidate.feasible for candidate in search.candidates)
    return f"{what}: {layer}, more than {budget}; of {fitting} patched plans that fit, it recomputes the fewest MACs"


def _test_inputs(model: LoadedModel, calib) -> np.ndarray:
    """Inputs kept in the build folder for `edgekit run`: the first calibration samples (a path or a
    list of files), else seeded random ones in the input's dtype (for a float interface, spread over
    the range of the int8 tensor it is quantized to)."""
    from edgekit.samples import load_inputs

    graph = model.graph
    tensor = graph.tensors[graph.inputs[0]]
    if calib:
        return np.stack(load_inputs(calib, model, limit=TEST_INPUTS))
    rng = np.random.default_rng(0)
    if tensor.dtype in ("int8", "uint8"):
        info = np.iinfo(tensor.dtype)
        return rng.integers(info.min, info.max + 1, size=(2,) + tensor.shape, dtype=tensor.dtype)
    consumer = next(node for node in graph.nodes if tensor.name in node.inputs)
    quant = graph.tensors[consumer.output].quant
    low, high = quant.dequantize(np.array([-128, 127], np.int8)) if quant is not None else (-1.0, 1.0)
    return rng.uniform(low, high, size=(2,) + tensor.shape).astype(np.float32)


def _check_kernels(graph, source) -> None:
    """Every node of the int8 graph has an int8 C kernel (or is a view): refuse before minutes of planning."""
    from edgekit.codegen.layer_calls import constraint_int8_activations, constraint_op_has_kernel

    for node in graph.nodes:
        for ok, detail in (constraint_op_has_kernel(node), constraint_int8_activations(node, graph)):
            if not ok:
                raise UnsupportedOpError(f"{source}: {detail}")


def compile_model(source: str, target_name: str | None, *, target_file=None, output=None, force=False,
                  resolution=None, width=None, **options) -> CompileResult:
    """Compile ``source`` for a target into a build folder (default build/MODEL-TARGET).

    User errors come first, before minutes of work: the target, the model name, and the output folder,
    which is then locked for the whole compile (see build_folder.py).
    """
    from edgekit.model_source import model_label
    from edgekit.scratch import remove_stale_scratch
    from edgekit.target import load_target, load_target_file

    target = load_target_file(target_file) if target_file else load_target(target_name)
    output = Path(output or f"build/{model_label(source, resolution, width)}-{target.name}")
    remove_stale_scratch()
    with locked_destination(output, force):
        return _compile(source, target, target_file=target_file, output=output, force=force,
                        resolution=resolution, width=width, **options)


def _compile(source: str, target, *, target_file, output: Path, force: bool, resolution=None, width=None,
             num_classes=None, pretrained=None, calib=None, scheme="int8", patch="fit", max_patch_overhead=0.20,
             input_by_patch=False, progress=QUIET, tune=False, wide_weights=None) -> CompileResult:
    from edgekit import api
    from edgekit.board_runtime import embedded_inputs
    from edgekit.io_records import input_records, require_one_input
    from edgekit.build import build_firmware
    from edgekit.codegen.program import emit_program
    from edgekit.samples import load_inputs

    from edgekit.report import write_report

    started = time.perf_counter()
    if not PATCH_MODE.fullmatch(patch):
        raise EdgekitError(f"--patch {patch!r}: expected fit, off, auto, SPLIT:N or SPLIT:N:ORDER (a node name or "
                           "index, the number of patches per side, and row-major, serpentine or column-major)")
    if input_by_patch and patch == "off":
        raise EdgekitError("--input-by-patch needs a patched schedule: add --patch auto or --patch SPLIT:N")
    with progress.stage("import"):
        model = load_model(source, resolution=resolution, width=width, num_classes=num_classes,
                           pretrained=pretrained, calib=calib)
    require_one_input(model.graph, source)
    quantization = None
    if not model.is_quantized:
        try:
            quantization = api.quantize(model, calib, scheme, progress=progress)
        except UnsupportedOpError as error:  # the op and node are in the message; name the file too
            raise UnsupportedOpError(f"{source}: {error}") from None
        model = quantization.model
    graph = model.graph
    _check_kernels(graph, source)
    with progress.stage("planning"):
        schedule = plan_schedule(graph, patch, max_patch_overhead, input_by_patch, activation_budget(target))
        plan = schedule.plan
        layers = schedule.layer_rows(graph)
        patching = schedule.to_json()
        _check_arena_fits(schedule, layers, target, graph)
    calibrated = model.calibration  # quantized while loading (Keras, SavedModel)
    real_inputs = quantization.calibration if quantization else calibrated.inputs if calibrated else calib
    test_inputs = _test_inputs(model, real_inputs)
    embedded = embedded_inputs(input_records(graph, test_inputs)) if target.is_board else None
    with staged_folder(output, force) as staging:
        folder = BuildFolder(staging)
        try:
            with progress.stage("kernels"):
                program = emit_program(graph, plan, target, folder.sources, schedule.patches,
                                       flash_reserve_bytes=embedded.nbytes if embedded is not None else 0,
                                       wide_weights=wide_weights)
        except UnsupportedOpError as error:  # name the file too: the op and node are in the message
            raise UnsupportedOpError(f"{source}: {error}") from None
        tuning = None
        if tune:
            from edgekit.tuning import tune as tune_kernels

            with progress.stage("tuning (QEMU)"):
                tuning = tune_kernels(graph, plan, target, schedule.patches, program)
            program = emit_program(graph, plan, target, folder.sources, schedule.patches,
                                   flash_reserve_bytes=embedded.nbytes if embedded is not None else 0,
                                   tuned=tuning.variants, wide_weights=wide_weights)
        for layer, variant in zip(layers, layer_variants(graph, program)):
            layer["kernel_variant"] = variant
        folder.save_timeline(render_timeline(plan))
        folder.save_plan(program.plan.to_json())
        if target_file:  # `edgekit run` emulates the same target without the user's file
            folder.save_own_target(target_file)
        folder.save_graphs(graph, model.float_graph, model.preprocess)
        real = real_inputs is not None and model.float_graph is not None  # the float reference sees unrounded inputs
        folder.save_test_inputs(test_inputs, np.stack(load_inputs(real_inputs, model, for_float=True,
                                                                  limit=TEST_INPUTS)) if real else None)
        manifest = {
            "build_id": new_build_id(), "model": model.name, "source": str(source), "target": target.name,
            "board": target.board.name if target.board else None, "harness": target.harness,
            "embedded_test_inputs": len(embedded) if embedded is not None else 0,
            "random_weights": model.random_weights,
            "preprocess": model.preprocess.__dict__ if model.preprocess else None,
            "scheme": quantization.scheme.name if quantization else "imported int8",
            "calibration": {"samples": quantization.calibration_samples,
                            "synthetic": quantization.synthetic_calibration,
                            "source": quantization.calibration_source,
                            "top1_agreement": quantization.top1_agreement} if quantization else
                           {"samples": calibrated.samples, "synthetic": calibrated.synthetic,
                            "source": f"{calibrated.description} (TensorFlow's converter)",
                            "top1_agreement": None} if calibrated else None,
            "arena_bytes": program.arena_bytes, "activation_arena_bytes": plan.arena_bytes,  # arena_bytes: with the scratch
            "plan_method": plan.method, "plan_lower_bound": plan.lower_bound,
            "scratch_bytes": program.plan.scratch_bytes, "peak": schedule.peak(), "schedule": schedule.summary(),
            "patch": patching,
            "mark_nodes": program.mark_nodes,
            "kernels": program.kernel_names,
            "tuning": {"runs": tuning.runs, "instructions": tuning.instructions} if tuning else None,
            "weights": {"internal_bytes": program.internal_weight_bytes,
                        "external_bytes": program.external_weight_bytes},
            "layers": layers,
            "ram_budget_bytes": target.ram.length, "flash_budget_bytes": target.flash.length,
        }
        try:
            firmware = build_firmware(folder.sources, target, folder.path, test_inputs=embedded, progress=progress)
        except DoesNotFitError as error:
            error.report = _plan_report(manifest)
            raise
        sizes = firmware.sizes
        manifest.update(fits=True, sizes=sizes.__dict__, flash_bytes=sizes.flash_bytes,
                        static_ram_bytes=sizes.ram_bytes, compile_seconds=round(time.perf_counter() - started, 2),
                        build_dir=str(output))
        folder.save_manifest(manifest)
        with progress.stage("report"):
            write_report(folder.path)
    return CompileResult(output, manifest)


def layer_variants(graph, program) -> list[str | None]:
    """Per graph node, the variant of the kernel(s) it runs ("dsp_w16", "tvm"...; None: no kernel)."""
    variants: dict[str, set] = {}
    for call in program.calls:
        if call.kernel is not None:
            variants.setdefault(call.node, set()).add(call.kernel.variant)
    return ["+".join(sorted(variants[node.name])) if node.name in variants else None for node in graph.nodes]


def _check_arena_fits(schedule: Schedule, layers: list[dict], target, graph) -> None:
    """Fail before code generation when the activations alone exceed the target's SRAM.

    The linker stays the final judge (stack and runtime come on top); this only saves minutes of
    kernel generation for a model that cannot fit. For a patched schedule it is the patched peak.
    """
    from edgekit.report import largest_layers_text

    budget = target.ram.length
    if schedule.peak_bytes <= budget:
        return
    peak = max(range(len(layers)), key=lambda i: layers[i]["live_bytes"])
    if schedule.patches is None:
        what = f"the activation arena of {schedule.peak_bytes:,} B (peak at node {layers[peak]['node']})"
    else:
        stage = schedule.patches.stage
        what = (f"the patched schedule's activations of {schedule.peak_bytes:,} B (split after "
                f"{graph.display_name(stage.split)}, {stage.n}x{stage.n} patches; peak at node {layers[peak]['node']})")
    error = DoesNotFitError(f"{target.name} SRAM ({budget:,} B) cannot hold {what}; "
                            f"{_does_not_fit_advice(schedule, graph, budget)}",
                            {"ram_budget_bytes": budget, "arena_bytes": schedule.peak_bytes,
                             "peak_node": layers[peak]["node"]})
    error.report = largest_layers_text(layers)
    raise error


def _does_not_fit_advice(schedule: Schedule, graph, budget: int) -> str:
    """What can still help when a schedule does not fit: only advice that would change the outcome."""
    from edgekit.memory.patch_search import split_blocker

    smaller = "a smaller --resolution or --width"
    search = schedule.search
    if schedule.mode == "off" or (search is None and schedule.patches is None):
        return f"try --patch fit (the default) or {smaller}"
    if search is None:  # --patch SPLIT:N
        return f"try --patch fit, --input-by-patch, or {smaller}"
    if not search.candidates:
        blocker = split_blocker(graph, search.baseline)
        return f"no patch split is possible ({blocker}); try {smaller}"
    over_bound = [c for c in search.candidates if not c.feasible and c.peak_bytes <= budget]
    if search.fit_bytes is None and over_bound:
        best = min(over_bound, key=lambda c: c.mac_overhead)
        return (f"a patched schedule fits with more recomputation (split after {graph.display_name(best.split)}, "
                f"{best.n}x{best.n}, "
                f"{best.mac_overhead:.1%} more MACs): use --patch fit or --max-patch-overhead "
                f"{math.ceil(best.mac_overhead * 100) / 100:.2f}")
    by_patch = "" if schedule.patches is not None and schedule.patches.memory.input_by_patch else "--input-by-patch, "
    least = min(c.peak_bytes for c in search.candidates)
    return f"no patched schedule needs less than {least:,} B; try {by_patch}{smaller}"


def _plan_report(manifest: dict) -> str:
    """The memory picture of a compile that did not fit (no firmware, so no measured stack)."""
    from edgekit.report import largest_layers_text

    budget = manifest["ram_budget_bytes"]
    return (largest_layers_text(manifest["layers"]) +
            f"\narena (activations) {manifest['arena_bytes']:,} B vs SRAM budget {budget:,} B; "
            f"weights {manifest['weights']['internal_bytes']:,} B internal, "
            f"{manifest['weights']['external_bytes']:,} B external flash")
