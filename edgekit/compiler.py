"""`edgekit compile`: model -> int8 graph -> memory plan -> C (TVM kernels) -> linked firmware.

Every product is written into a staged build folder (see build_folder.py) that replaces the
destination only when the whole compile succeeded.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.build_folder import staged_folder, write_manifest
from edgekit.errors import DoesNotFitError, EdgekitError
from edgekit.model_source import LoadedModel, load_model

TEST_INPUTS = 4


@dataclass
class CompileResult:
    build_dir: Path
    manifest: dict


def _test_inputs(model: LoadedModel, calib: str | None) -> np.ndarray:
    """Inputs kept in the build folder for `edgekit run`: calibration samples, else seeded random ones."""
    from edgekit.samples import load_inputs

    tensor = model.graph.tensors[model.graph.inputs[0]]
    if calib:
        return np.stack(load_inputs(calib, model, limit=TEST_INPUTS))
    rng = np.random.default_rng(0)
    return rng.integers(-128, 128, size=(2,) + tensor.shape, dtype=np.int8)


def compile_model(source: str, target_name: str, *, resolution=None, width=None, num_classes=None, calib=None,
                  scheme="int8", patch="off", max_patch_overhead=0.20, output=None, force=False,
                  progress=None) -> CompileResult:
    from edgekit import api
    from edgekit.build import build_firmware
    from edgekit.codegen.program import emit_program
    from edgekit.inspect_model import summarize
    from edgekit.ir.serialize import save_graph
    from edgekit.memory import plan_memory
    from edgekit.target import load_target

    started = time.perf_counter()
    target = load_target(target_name)
    if patch != "off":
        raise EdgekitError(f"--patch {patch}: patch-based inference is not available in this version; "
                           "use --patch off with a smaller --resolution")
    model = load_model(source, resolution=resolution, width=width, num_classes=num_classes)
    quantization = None
    if not model.is_quantized:
        quantization = api.quantize(model, calib, scheme, progress=progress)
        model = quantization.model
    graph = model.graph
    plan = plan_memory(graph)
    _check_arena_fits(plan, graph, target)
    output = Path(output or f"build/{model.name}-{target.name}")
    with staged_folder(output, force) as folder:
        program = emit_program(graph, plan, target, folder / "src")
        save_graph(graph, folder / "model.ek")
        if model.float_graph is not None:
            save_graph(model.float_graph, folder / "float_model.ek")
        np.save(folder / "test_inputs.npy", _test_inputs(model, calib))
        manifest = {
            "model": model.name, "source": str(source), "target": target.name,
            "preprocess": model.preprocess.__dict__ if model.preprocess else None,
            "scheme": quantization.scheme.name if quantization else "imported int8",
            "calibration": {"samples": quantization.calibration_samples,
                            "synthetic": quantization.synthetic_calibration,
                            "top1_agreement": quantization.top1_agreement} if quantization else None,
            "arena_bytes": plan.arena_bytes, "plan_method": plan.method, "plan_lower_bound": plan.lower_bound,
            "kernels": program.kernel_names,
            "weights": {"internal_bytes": program.internal_weight_bytes,
                        "external_bytes": program.external_weight_bytes},
            "layers": [dict(layer.__dict__, live_bytes=step.live_bytes)
                       for layer, step in zip(summarize(graph).layers, plan.steps)],
            "ram_budget_bytes": target.ram.length, "flash_budget_bytes": target.flash.length,
        }
        try:
            firmware = build_firmware(folder / "src", target, folder)
        except DoesNotFitError as error:
            error.report = _plan_report(manifest)
            raise
        sizes = firmware.sizes
        manifest.update(fits=True, sizes=sizes.__dict__, flash_bytes=sizes.flash_bytes,
                        static_ram_bytes=sizes.ram_bytes, compile_seconds=round(time.perf_counter() - started, 2),
                        build_dir=str(output))
        write_manifest(folder, manifest)
    return CompileResult(output, manifest)


def _check_arena_fits(plan, graph, target) -> None:
    """Fail before code generation when the activations alone exceed the target's SRAM.

    The linker stays the final judge (stack and runtime come on top); this only saves minutes of
    kernel generation for a model that cannot fit.
    """
    from edgekit.inspect_model import summarize
    from edgekit.report import layer_rows_text

    budget = target.ram.length
    if plan.arena_bytes <= budget:
        return
    layers = [dict(layer.__dict__, live_bytes=step.live_bytes)
              for layer, step in zip(summarize(graph).layers, plan.steps)]
    peak = plan.steps[max(range(len(plan.steps)), key=lambda i: plan.steps[i].live_bytes)]
    error = DoesNotFitError(
        f"{target.name} SRAM ({budget:,} B) cannot hold the activation arena of {plan.arena_bytes:,} B "
        f"(peak at node {peak.node}); try a smaller --resolution or --width, or --patch auto")
    error.report = layer_rows_text(layers, {})
    raise error


def _plan_report(manifest: dict) -> str:
    """The memory picture of a compile that did not fit (no firmware, so no measured stack)."""
    from edgekit.report import layer_rows_text

    budget = manifest["ram_budget_bytes"]
    return (layer_rows_text(manifest["layers"], {}) +
            f"\narena (activations) {manifest['arena_bytes']:,} B vs SRAM budget {budget:,} B; "
            f"weights {manifest['weights']['internal_bytes']:,} B internal, "
            f"{manifest['weights']['external_bytes']:,} B external flash")
