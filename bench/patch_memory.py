"""Patch-based inference benchmark: activation SRAM and MAC overhead of MCUNetV2-style patching
against layer by layer, for the models the patch-based inference issue sets goals for. Prints JSON.

For each model it runs ``search_patch_plan`` twice: with the input frame in SRAM, and with the
input handed over patch by patch. It records the chosen split, n, peak and MAC overhead, checks the
goals, and explains every goal that is missed from the step that makes the peak and the cheapest
plan that the MAC bound ruled out. Unless ``--no-verify`` is given, it also runs the chosen plans
in the patch-by-patch int8 reference on a random frame and compares them with ``run_graph``.

MobileNetV2 graphs come from the zoo (random weights at width 0.35) and are quantized with two
random-normal calibration samples: the memory does not depend on the weights. VWW is the MLPerf
Tiny int8 model.

    .venv/bin/python bench/patch_memory.py [--max-mac-overhead 0.2] [--models vww,mbv2-0.35-144] [--no-verify]
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.ir import Graph
from edgekit.ir.interpreter import run_graph
from edgekit.memory.patch_reference import run_patched
from edgekit.memory.patch_search import PatchSearch, search_patch_plan

VWW_PATH = Path("/work/shared/models/mlperf-tiny/vww_96_int8.tflite")


@dataclass(frozen=True)
class Goal:
    """Activation peak must be below ``limit_bytes`` (or equal to it when ``inclusive``)."""

    label: str
    limit_bytes: int
    inclusive: bool = False

    def met(self, peak_bytes: int) -> bool:
        return peak_bytes <= self.limit_bytes if self.inclusive else peak_bytes < self.limit_bytes


def quantized_zoo_model(resolution: int, width: float) -> Graph:
    from edgekit.model_source import load_model
    from edgekit.quantize.calibrate import calibrate
    from edgekit.quantize.convert import quantize_graph
    from edgekit.quantize.scheme import load_scheme

    graph = load_model("mobilenetv2", resolution=resolution, width=width).graph
    scheme = load_scheme("int8")
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal(graph.tensors[graph.inputs[0]].shape).astype(np.float32) for _ in range(2)]
    return quantize_graph(graph, calibrate(graph, samples, scheme), scheme)


def vww_model() -> Graph:
    from edgekit.frontend.tflite import import_tflite

    return import_tflite(VWW_PATH)


MODELS = {
    "mbv2-1.0-224": (lambda: quantized_zoo_model(224, 1.0),
                     [Goal("MCUNetV2's 172 KB", 172 * 1024, inclusive=True), Goal("TinyEngine's 250,880 B", 250_880)]),
    "mbv2-0.35-144": (lambda: quantized_zoo_model(144, 0.35), [Goal("59,000 B", 59_000)]),
    "vww-96": (vww_model, [Goal("half of TFLM's 73,728 B", 73_728 // 2)]),
}


def shortfall(search: PatchSearch, goal: Goal) -> str:
    """Why a goal is missed: the step that makes the peak, and the best plan the MAC bound ruled out."""
    if search.chosen is None:
        return f"no patched plan beats layer by layer ({search.baseline.arena_bytes} B)"
    memory = search.chosen.memory
    step = memory.peak_step
    sizes = {**memory.arena.tensors, **memory.working.tensors}
    parts = ", ".join(f"{name} {sizes[name].size} B" for name in step.tensors if name in sizes)
    where = "the patch stage" if step.phase == "patch" else "the layer-by-layer rest"
    reason = f"peak {memory.peak_bytes} B in {where} at {step.node} ({parts})"
    frame_bytes = search.chosen.stage.graph.tensors[search.chosen.stage.input].nbytes
    if not memory.input_by_patch and not goal.met(frame_bytes):
        return reason + f"; the input frame alone takes {frame_bytes} B: only input by patch can meet {goal.label}"
    ruled_out = [c for c in search.candidates if not c.feasible and goal.met(c.peak_bytes)]
    if ruled_out:
        best = min(ruled_out, key=lambda c: c.mac_overhead)
        reason += (f"; {goal.label} needs split {best.split!r} n={best.n} ({best.peak_bytes} B) at "
                   f"{best.mac_overhead:.1%} MAC overhead, over the {search.max_mac_overhead:.0%} bound")
    else:
        reason += f"; no split and n up to 8 reaches {goal.label} at any MAC overhead"
    return reason


def bit_exact(search: PatchSearch, graph: Graph) -> bool | None:
    if search.chosen is None:
        return None
    tensor = graph.tensors[graph.inputs[0]]
    frame = np.random.default_rng(1).integers(-128, 128, tensor.shape).astype(np.int8)
    expected = run_graph(graph, [frame], mode="int8")
    actual = run_patched(search.chosen.stage, frame).outputs
    return all(np.array_equal(expected[name], actual[name]) for name in graph.outputs)


def benchmark(name: str, max_mac_overhead: float, verify: bool, log) -> dict:
    load, goals = MODELS[name]
    started = time.perf_counter()
    graph = load()
    print(f"{name}: loaded in {time.perf_counter() - started:.1f} s", file=log)
    variants = {}
    for variant, by_patch in (("frame_in_sram", False), ("input_by_patch", True)):
        started = time.perf_counter()
        search = search_patch_plan(graph, max_mac_overhead, input_by_patch=by_patch)
        print(f"{name}: {variant} search over {len(search.candidates)} candidates in "
              f"{time.perf_counter() - started:.1f} s", file=log)
        summary = search.chosen.to_json() if search.chosen else {"activation_peak_bytes": search.peak_bytes}
        summary["candidates_considered"] = len(search.candidates)
        summary["goals"] = [
            {"goal": goal.label, "limit_bytes": goal.limit_bytes, "met": goal.met(search.peak_bytes),
             **({} if goal.met(search.peak_bytes) else {"why": shortfall(search, goal)})}
            for goal in goals
        ]
        if verify:
            summary["bit_exact"] = bit_exact(search, graph)
        variants[variant] = summary
    framed, streamed = variants["frame_in_sram"], variants["input_by_patch"]
    return {
        "model": name,
        "input_shape": list(graph.tensors[graph.inputs[0]].shape),
        "baseline_layer_by_layer_bytes": search.baseline.arena_bytes,
        "activation_peak_bytes": framed["activation_peak_bytes"],
        "activation_peak_bytes_input_by_patch": streamed["activation_peak_bytes"],
        "split": framed.get("split"),
        "patches": framed.get("patches"),
        "mac_overhead": framed.get("mac_overhead", 0.0),
        **variants,
    }


def main(argv=None, out=sys.stdout, log=sys.stderr) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mac-overhead", type=float, default=0.20)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--no-verify", action="store_true", help="skip the bit-exactness run")
    args = parser.parse_args(argv)
    results = []
    for name in args.models.split(","):
        if name == "vww-96" and not VWW_PATH.exists():
            results.append({"model": name, "skipped": f"{VWW_PATH} is missing"})
            continue
        results.append(benchmark(name, args.max_mac_overhead, not args.no_verify, log))
    print(json.dumps({"max_mac_overhead": args.max_mac_overhead, "models": results}, indent=2), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
