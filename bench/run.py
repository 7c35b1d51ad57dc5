"""Benchmarks: compile and run models for cortex-m7 and print one JSON document.

Per model: whether it fits, peak SRAM (arena + measured stack + other static RAM), arena, flash
(internal and external), instructions per inference, compile time, bit-exactness; for patched
builds (``patch``) also the split, n, MAC overhead and the layer-by-layer arena they replace. Targets (from
the issues) are compared in the printed JSON, not asserted: this is a measurement, not a test.
`make bench` runs it and writes bench/results.json.
"""

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgekit.compiler import compile_model
from edgekit.errors import DoesNotFitError, EdgekitError
from edgekit.runner import run_build

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

MODELS = {
    "mobilenetv2-1.0-224": dict(source="mobilenetv2", width=1.0, resolution=224, calib="data/images"),
    "mobilenetv2-1.0-224-patch-auto": dict(source="mobilenetv2", width=1.0, resolution=224, calib="data/images",
                                           patch="auto"),
    "mobilenetv2-1.0-224-input-by-patch": dict(source="mobilenetv2", width=1.0, resolution=224,
                                               calib="data/images", patch="auto", input_by_patch=True),
    "mobilenetv2-1.0-144": dict(source="mobilenetv2", width=1.0, resolution=144, calib="data/images"),
    "mobilenetv2-0.35-224": dict(source="mobilenetv2", width=0.35, resolution=224),
    "mobilenetv2-0.35-144": dict(source="mobilenetv2", width=0.35, resolution=144),
    "mobilenetv2-0.35-144-patch-auto": dict(source="mobilenetv2", width=0.35, resolution=144, patch="auto"),
    "mobilenetv2-0.35-144-input-by-patch": dict(source="mobilenetv2", width=0.35, resolution=144, patch="auto",
                                                input_by_patch=True),
    "vww-96": dict(source="models/mlperf-tiny/vww_96_int8.tflite"),
    "vww-96-patch-auto": dict(source="models/mlperf-tiny/vww_96_int8.tflite", patch="auto"),
    "resnet8": dict(source="models/mlperf-tiny/resnet8_cifar10_int8.tflite"),
    "dscnn": dict(source="models/mlperf-tiny/dscnn_kws_int8.tflite"),
}


def bench_model(name: str, spec: dict, target: str, workdir: Path, max_patch_overhead: float) -> dict:
    source = spec["source"] if spec["source"] == "mobilenetv2" else str(SHARED / spec["source"])
    calib = str(SHARED / spec["calib"]) if "calib" in spec else None
    started = time.perf_counter()
    try:
        result = compile_model(source, target, width=spec.get("width"), resolution=spec.get("resolution"),
                               calib=calib, patch=spec.get("patch", "off"),
                               max_patch_overhead=max_patch_overhead, input_by_patch=spec.get("input_by_patch", False),
                               output=workdir / name, force=True)
        run = run_build(result.build_dir)
    except DoesNotFitError as error:
        return {"fits": False, "error": str(error), "compile_seconds": round(time.perf_counter() - started, 1)}
    except EdgekitError as error:  # a failure, not a verdict on the memory: recorded, the benchmark goes on
        return {"error": str(error), "compile_seconds": round(time.perf_counter() - started, 1)}
    patch = result.manifest.get("patch") or {}
    chosen = patch.get("chosen")
    patching = {"patch": {"split": chosen["split"], "split_node": chosen["split_node"], "n": chosen["patches"],
                          "order": chosen["order"], "inplace_rows": chosen["inplace_rows"],
                          "frame_reuse_bytes": chosen["frame_reuse_bytes"],
                          "mac_overhead": round(chosen["mac_overhead"], 4), "input": patch["input"],
                          "activation_peak_bytes": chosen["activation_peak_bytes"],
                          "planned_scratch_bytes": chosen["scratch_bytes"], "peak_step": chosen["peak_step"],
                          "layer_by_layer_arena_bytes": patch["layer_by_layer_arena_bytes"]}} if chosen else {}
    return {**patching,
        "fits": True, "peak_sram_bytes": run.peak_sram_bytes, "arena_bytes": run.arena_bytes,
        "stack_bytes": run.stack_bytes, "other_static_ram_bytes": run.other_static_ram_bytes,
        "scratch_bytes": result.manifest["scratch_bytes"],
        "flash_bytes": run.flash_bytes,
        "external_flash_bytes": run.external_flash_bytes,
        "instructions_per_inference": run.instructions_per_inference, "bit_exact": run.bit_exact,
        "compile_seconds": result.manifest["compile_seconds"],
    }


@dataclass(frozen=True)
class MemoryGoal:
    """A measured peak SRAM goal of the memory issue: ``firmware`` (a MODELS entry) must reach at
    most ``limit_bytes`` (strictly less unless ``inclusive``)."""

    model: str  # the patch_memory.py model
    firmware: str
    label: str
    limit_bytes: int
    inclusive: bool

    def met(self, peak_bytes: int) -> bool:
        return peak_bytes <= self.limit_bytes if self.inclusive else peak_bytes < self.limit_bytes


MEMORY_GOALS = [
    MemoryGoal("mbv2-1.0-224", "mobilenetv2-1.0-224-patch-auto", "frame in SRAM <= TinyEngine's 250,880 B",
               250_880, True),
    MemoryGoal("mbv2-1.0-224", "mobilenetv2-1.0-224-input-by-patch", "input by patch <= MCUNetV2's 172 KiB",
               176_128, True),
    MemoryGoal("mbv2-0.35-144", "mobilenetv2-0.35-144-input-by-patch", "input by patch < TinyEngine's 59,000 B",
               59_000, False),
    MemoryGoal("vww-96", "vww-96-patch-auto", "frame in SRAM < half of TFLite Micro's 73,728 B", 36_864, False),
]


def measured_goal(goal: MemoryGoal, built: dict) -> dict:
    """A goal against its firmware run: the measured peak, its parts, the plan, met or why not (in bytes)."""
    if not built.get("fits"):
        return {"goal": goal.label, "limit_bytes": goal.limit_bytes, "firmware": goal.firmware, "met": False,
                "why": f"the firmware did not build or run: {built.get('error')}"}
    peak, patch = built["peak_sram_bytes"], built.get("patch", {})
    entry = {"goal": goal.label, "limit_bytes": goal.limit_bytes, "firmware": goal.firmware,
             "peak_sram_bytes": peak, "arena_bytes": built["arena_bytes"], "stack_bytes": built["stack_bytes"],
             "other_static_ram_bytes": built["other_static_ram_bytes"], "scratch_bytes": built["scratch_bytes"],
             "bit_exact": built["bit_exact"],
             "plan": patch, "met": goal.met(peak)}
    if not entry["met"]:
        step = patch.get("peak_step", {})
        entry["why"] = (f"measured {peak:,} B = arena {built['arena_bytes']:,} B + stack {built['stack_bytes']:,} B "
                        f"+ other static {built['other_static_ram_bytes']:,} B (kernel scratch "
                        f"{built['scratch_bytes']:,} B); the arena peaks at the {step.get('phase')} step "
                        f"{step.get('node')} ({step.get('live_bytes', 0):,} B: {', '.join(step.get('tensors', []))}); "
                        f"{peak - goal.limit_bytes + (0 if goal.inclusive else 1):,} B too many")
    return entry


def memory_section(firmware: dict, max_mac_overhead: float) -> dict:
    """Per model: the activation plans of bench/patch_memory.py (frame in SRAM and input by patch) and
    the memory issue's goals measured on the firmware runs above."""
    import io

    import patch_memory

    out = io.StringIO()
    patch_memory.main(["--max-mac-overhead", str(max_mac_overhead), "--no-verify"], out=out)
    section = {}
    for entry in json.loads(out.getvalue())["models"]:
        section[entry["model"]] = {
            "activation_peak_bytes": entry.get("activation_peak_bytes"),
            "activation_peak_bytes_input_by_patch": entry.get("activation_peak_bytes_input_by_patch"),
            "mac_overhead": entry.get("mac_overhead"), "split": entry.get("split"), "patches": entry.get("patches"),
            "layer_by_layer_bytes": entry.get("baseline_layer_by_layer_bytes"),
            "plans": {variant: entry.get(variant) for variant in ("frame_in_sram", "input_by_patch")},
            "goals": [measured_goal(goal, firmware[goal.firmware]) for goal in MEMORY_GOALS
                      if goal.model == entry["model"] and goal.firmware in firmware],
        }
    return section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--max-patch-overhead", type=float, default=0.20)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--section", choices=["speed", "memory"],
                        help="run only this section and update only its key of --out: speed (bench/speed.py), or "
                             "memory (the firmware of the memory goals and the patch search; their entries of "
                             "`models` are updated too)")
    args = parser.parse_args(argv)
    if args.section == "speed":
        import speed

        return write_section("speed", speed.speed_section(), args.out)
    if args.section == "memory":
        names = list(dict.fromkeys(goal.firmware for goal in MEMORY_GOALS))
        with tempfile.TemporaryDirectory() as tmp:
            firmware = {name: bench_model(name, MODELS[name], args.target, Path(tmp), args.max_patch_overhead)
                        for name in names}
        return write_section("memory", memory_section(firmware, args.max_patch_overhead), args.out, firmware)
    with tempfile.TemporaryDirectory() as tmp:
        results = {"target": args.target,
                   "models": {name: bench_model(name, MODELS[name], args.target, Path(tmp), args.max_patch_overhead)
                              for name in args.models}}
    results["memory"] = memory_section(results["models"], args.max_patch_overhead)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def write_section(key: str, section: dict, out, models: dict | None = None) -> int:
    """Print ``section`` and store it as ``key`` of the JSON file ``out``, keeping its other keys;
    ``models`` replaces those entries of its ``models`` and keeps the others."""
    print(json.dumps({key: section}, indent=2))
    if out:
        path = Path(out)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[key] = section
        if models:
            results["models"] = {**results.get("models", {}), **models}
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
