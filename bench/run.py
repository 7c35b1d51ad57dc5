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
                          "mac_overhead": round(chosen["mac_overhead"], 4), "input": patch["input"],
                          "layer_by_layer_arena_bytes": patch["layer_by_layer_arena_bytes"]}} if chosen else {}
    return {**patching,
        "fits": True, "peak_sram_bytes": run.peak_sram_bytes, "arena_bytes": run.arena_bytes,
        "stack_bytes": run.stack_bytes, "flash_bytes": run.flash_bytes,
        "external_flash_bytes": run.external_flash_bytes,
        "instructions_per_inference": run.instructions_per_inference, "bit_exact": run.bit_exact,
        "compile_seconds": result.manifest["compile_seconds"],
    }


#: the patch-memory model of each firmware benchmark whose measured peak SRAM it reports
MEMORY_FIRMWARE = {"mbv2-1.0-224": "mobilenetv2-1.0-224-patch-auto",
                   "mbv2-0.35-144": "mobilenetv2-0.35-144-patch-auto", "vww-96": "vww-96-patch-auto"}


def memory_section(firmware: dict, max_mac_overhead: float) -> dict:
    """Per model: activation peak (planned), peak SRAM (measured in QEMU where a build ran), MAC overhead,
    split and patches, from bench/patch_memory.py plus the firmware runs above."""
    import io

    import patch_memory

    out = io.StringIO()
    patch_memory.main(["--max-mac-overhead", str(max_mac_overhead), "--no-verify"], out=out)
    section = {}
    for entry in json.loads(out.getvalue())["models"]:
        built = firmware.get(MEMORY_FIRMWARE.get(entry["model"], ""), {})
        section[entry["model"]] = {
            "activation_peak_bytes": entry.get("activation_peak_bytes"),
            "activation_peak_bytes_input_by_patch": entry.get("activation_peak_bytes_input_by_patch"),
            "peak_sram_bytes": built.get("peak_sram_bytes"),
            "peak_sram_from": MEMORY_FIRMWARE.get(entry["model"]) if built else None,
            "mac_overhead": entry.get("mac_overhead"), "split": entry.get("split"), "patches": entry.get("patches"),
            "layer_by_layer_bytes": entry.get("baseline_layer_by_layer_bytes"),
            "goals": entry.get("frame_in_sram", {}).get("goals"),
            "goals_input_by_patch": entry.get("input_by_patch", {}).get("goals"),
        }
    return section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--max-patch-overhead", type=float, default=0.20)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--section", choices=["speed"],
                        help="run only this section and update only its key of --out (bench/speed.py)")
    args = parser.parse_args(argv)
    if args.section == "speed":
        import speed

        return write_section("speed", speed.speed_section(), args.out)
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


def write_section(key: str, section: dict, out) -> int:
    """Print ``section`` and store it as ``key`` of the JSON file ``out``, keeping its other keys."""
    print(json.dumps({key: section}, indent=2))
    if out:
        path = Path(out)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[key] = section
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
