"""The speed benchmark: instructions per inference of each model on each target, in QEMU, beside
TFLite Micro + CMSIS-NN.

``bench/run.py --section speed`` runs it and writes the ``speed`` key of bench/results.json:
``speed.<model>.<target>.instructions_per_inference`` (and bit-exactness, instructions per MAC by op
kind), with the TFLite Micro + CMSIS-NN count, the ratio and the goal (0.6x) beside each cortex-m7
figure. The inputs are the issue's: for the MLPerf Tiny models and the zoo model the bytes of a
32-bit LCG (s = s * 1664525 + 1013904223 mod 2^32, seed 1, each byte s >> 24 after each step, as
int8, in the model's input layout); for the NCHW MobileNetV2 the dog sample's bytes.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from edgekit.compiler import compile_model
from edgekit.errors import EdgekitError
from edgekit.runner import run_build

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TARGETS = ("cortex-m7", "cortex-m4", "cortex-m55")
GOAL_RATIO = 0.6

# model -> (source, input: "lcg" or a .npy under shared/, compile options)
MODELS = {
    "dscnn": ("models/mlperf-tiny/dscnn_kws_int8.tflite", "lcg", {}),
    "resnet8": ("models/mlperf-tiny/resnet8_cifar10_int8.tflite", "lcg", {}),
    "vww": ("models/mlperf-tiny/vww_96_int8.tflite", "lcg", {}),
    "mobilenetv2_224": ("models/tflite-micro/mobilenet_v2_int8_224_nchw.tflite",
                        "data/samples/dog_bytes_as_int8_1x3x224x224.npy", {}),
    "mobilenetv2_0.35_144": ("mobilenetv2", "lcg", {"width": 0.35, "resolution": 144, "patch": "auto"}),
}

# TFLite Micro + CMSIS-NN on cortex-m7 (QEMU mps2-an500, arm-none-eabi-gcc 12.2 -O2, the same inputs and
# the same instruction-count plugin), measured for issue 8.
CMSIS_NN_CORTEX_M7 = {"dscnn": 7_643_642, "resnet8": 30_027_023, "vww": 24_025_559, "mobilenetv2_224": 789_745_948}


def lcg_bytes(count: int) -> np.ndarray:
    """The issue's LCG input bytes, as int8."""
    out = np.empty(count, dtype=np.uint8)
    state = 1
    for i in range(count):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = state >> 24
    return out.view(np.int8)


def _inputs(kind: str, build_dir: Path, folder: Path) -> Path:
    """A .npy holding one input for the build in ``build_dir``."""
    if kind != "lcg":
        return SHARED / kind
    shape = tuple(np.load(build_dir / "test_inputs.npy").shape[1:])
    path = folder / "lcg.npy"
    np.save(path, lcg_bytes(int(np.prod(shape))).reshape((1,) + shape))
    return path


def per_op_kind(manifest: dict, layer_instructions: list[int]) -> dict:
    """Instructions, MACs and instructions per MAC summed by op kind."""
    kinds: dict[str, dict] = {}
    for layer, count in zip(manifest["layers"], layer_instructions):
        kind = kinds.setdefault(layer["op"], {"instructions": 0, "macs": 0})
        kind["instructions"] += count
        kind["macs"] += layer["macs"]
    for kind in kinds.values():
        kind["instructions_per_mac"] = round(kind["instructions"] / kind["macs"], 2) if kind["macs"] else None
    return kinds


def bench_one(model: str, target: str, folder: Path) -> dict:
    source, input_kind, options = MODELS[model]
    source = source if source == "mobilenetv2" else str(SHARED / source)
    started = time.perf_counter()
    try:
        result = compile_model(source, target, output=folder / f"{model}-{target}", force=True, **options)
        compiled = time.perf_counter()
        run = run_build(result.build_dir, inputs=str(_inputs(input_kind, result.build_dir, folder)))
    except EdgekitError as error:
        return {"error": str(error), "seconds": round(time.perf_counter() - started, 1)}
    entry = {"instructions_per_inference": run.instructions_per_inference, "bit_exact": run.bit_exact,
             "peak_sram_bytes": run.peak_sram_bytes, "scratch_bytes": result.manifest["scratch_bytes"],
             "flash_bytes": run.flash_bytes, "compile_seconds": round(compiled - started, 1),
             "by_op": per_op_kind(result.manifest, run.layer_instructions)}
    baseline = CMSIS_NN_CORTEX_M7.get(model) if target == "cortex-m7" else None
    if baseline:
        ratio = run.instructions_per_inference / baseline
        entry.update(tflm_cmsis_nn_instructions=baseline, ratio=round(ratio, 3), goal_ratio=GOAL_RATIO,
                     meets_goal=ratio <= GOAL_RATIO)
    return entry


def speed_section(models=tuple(MODELS), targets=TARGETS) -> dict:
    """``speed.<model>.<target>`` for every model and target."""
    with tempfile.TemporaryDirectory() as tmp:
        return {model: {target: bench_one(model, target, Path(tmp)) for target in targets} for model in models}
