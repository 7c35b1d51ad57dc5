"""Patch-based inference in firmware: `compile_model(..., patch=...)` then QEMU, real TVM kernels, real
arm-none-eabi-gcc.

The firmware must equal both golden models byte for byte: ``run_graph`` (layer by layer) and
``run_patched`` (the same patch schedule in NumPy); its measured peak SRAM must be below the
layer-by-layer build's. Models: the small MobileNetV2 of test_firmware_models.py (48 px), split
after a depthwise conv (the last node writes a tile that is copied into the split tensor) and after
a residual add (the add reads a sub-window of the block input and writes the split rows in place),
each with 2x2 and 3x3 patches; and a graph whose two branches read different windows of one
tensor (a crop copy) and whose stage ends with a max pool.
"""

import random

import numpy as np
import pytest

from edgekit.build_folder import BuildFolder
from edgekit.compiler import compile_model
from edgekit.ir.interpreter import run_graph
from edgekit.ir.serialize import load_graph, save_graph
from edgekit.memory.patch_reference import run_patched
from edgekit.memory.patch_search import build_patch_plan
from edgekit.memory.patch_stage import stage_problem
from edgekit.runner import run_build
from test_firmware_models import RESOLUTION, small_mobilenetv2
from test_memory_patch_stage import Int8Builder, random_frame

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

CALIB_SAMPLES = 3


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """The small MobileNetV2 saved as TorchScript, and a folder of float .npy calibration inputs."""
    import torch

    folder = tmp_path_factory.mktemp("patch-mbv2")
    torch.jit.save(torch.jit.script(small_mobilenetv2()), folder / "small.pt")
    calib = folder / "calib"
    calib.mkdir()
    rng = np.random.default_rng(1)
    for i in range(CALIB_SAMPLES):
        np.save(calib / f"x{i}.npy", rng.normal(0, 1, (1, RESOLUTION, RESOLUTION, 3)).astype(np.float32))
    return str(folder / "small.pt"), str(calib)


@pytest.fixture(scope="module")
def layer_by_layer(small_model, tmp_path_factory):
    """The same model compiled and run without patches."""
    model, calib = small_model
    build = compile_model(model, "cortex-m7", resolution=RESOLUTION, calib=calib,
                          output=tmp_path_factory.mktemp("off") / "b")
    return build, run_build(build.build_dir, timeout_s=120)


def compile_and_run(model, calib, folder, **options):
    build = compile_model(model, "cortex-m7", resolution=RESOLUTION, calib=calib, output=folder / "b", **options)
    return build, run_build(build.build_dir, timeout_s=120)


def assert_matches_both_references(build, run, spec: str | None = None):
    """Firmware outputs == run_graph == run_patched on every test input."""
    graph = load_graph(build.build_dir / "model.ek")
    patch = build.manifest["patch"]["chosen"]
    schedule = build_patch_plan(graph, spec or f"{patch['split']}:{patch['patches']}")
    inputs = np.load(build.build_dir / "test_inputs.npy")
    assert run.bit_exact and run.mismatches == 0 and run.inputs == len(inputs)
    for x, firmware_output in zip(inputs, run.outputs[0]):
        layered = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
        patched = run_patched(schedule.stage, x).outputs[graph.outputs[0]]
        np.testing.assert_array_equal(patched, layered)
        np.testing.assert_array_equal(firmware_output, layered)


def assert_instructions_line_up(build, run):
    """One count per graph node (stage nodes summed over patches) and one per (patch, stage node)."""
    manifest = build.manifest
    patch = manifest["patch"]
    assert len(run.layer_instructions) == len(manifest["layers"])
    assert all(count > 0 for count in run.layer_instructions)
    steps = run.patch_step_instructions
    assert len(steps) == patch["patch_count"] and all(len(s) == len(patch["stage_nodes"]) for s in steps)
    for i in range(len(patch["stage_nodes"])):
        assert run.layer_instructions[i] == sum(s[i] for s in steps)
    assert sum(run.layer_instructions) <= run.instructions_per_inference


# split after node 4 (depthwise, 12x12x48: tile copy) and node 9 (residual add, 12x12x8: rows in place)
@pytest.mark.parametrize("spec", ["4:2", "4:3", "9:2", "9:3"])
def test_patched_firmware_is_bit_exact_and_needs_less_sram(spec, small_model, layer_by_layer, tmp_path):
    model, calib = small_model
    build, run = compile_and_run(model, calib, tmp_path, patch=spec)
    patch = build.manifest["patch"]
    split, n = spec.split(":")
    assert patch["chosen"]["split_node"] == int(split) and patch["chosen"]["patches"] == int(n)
    assert patch["tile_copy"] is (split == "4")
    assert_matches_both_references(build, run, spec)
    assert_instructions_line_up(build, run)
    layer_build, layer_run = layer_by_layer
    assert build.manifest["activation_arena_bytes"] == patch["chosen"]["activation_peak_bytes"]
    # layer by layer the arena also holds the kernels' scratch (plan.json), on top of the activations
    assert patch["layer_by_layer_arena_bytes"] == layer_build.manifest["activation_arena_bytes"]
    scratch_ends = [s["scratch"]["offset"] + s["scratch"]["bytes"]
                    for s in BuildFolder(layer_build.build_dir).plan()["steps"] if s["scratch"]]
    assert scratch_ends and layer_build.manifest["arena_bytes"] == max(
        [layer_build.manifest["activation_arena_bytes"]] + scratch_ends)
    assert run.arena_bytes < layer_run.arena_bytes
    assert run.peak_sram_bytes < layer_run.peak_sram_bytes
    assert run.peak_sram_bytes == run.arena_bytes + run.stack_bytes + run.other_static_ram_bytes


def test_auto_picks_a_plan_within_the_mac_bound(small_model, layer_by_layer, tmp_path):
    from edgekit.report import build_report, render_text, write_report

    model, calib = small_model
    build, run = compile_and_run(model, calib, tmp_path, patch="auto", max_patch_overhead=0.2)
    patch = build.manifest["patch"]
    chosen, search = patch["chosen"], patch["search"]
    assert chosen is not None and chosen["mac_overhead"] <= 0.2
    feasible = [c for c in search["candidates"] if c["feasible"]]
    assert chosen["activation_peak_bytes"] == min(c["peak_bytes"] for c in feasible)
    assert_matches_both_references(build, run)
    assert run.peak_sram_bytes < layer_by_layer[1].peak_sram_bytes
    write_report(build.build_dir)
    report = build_report(build.build_dir)
    text = render_text(report)
    assert "patch-based inference (--patch auto)" in text and "alternatives considered" in text
    assert report["patch"]["stage_instructions"] and (build.build_dir / "memory.png").stat().st_size > 0


def test_input_by_patch_runs_without_a_frame(small_model, tmp_path):
    model, calib = small_model
    build, run = compile_and_run(model, calib, tmp_path, patch="9:3", input_by_patch=True)
    header = (build.build_dir / "src" / "model.h").read_text()
    assert "EK_INPUT_BY_PATCH" in header and "ek_model_input_window" in header
    assert "EK_INPUT_BUFFER" not in header
    assert "callback" in build.manifest["patch"]["input"]
    assert_matches_both_references(build, run, "9:3")
    # no frame anywhere: not in the arena, and the harness reads windows from the host file
    frame_bytes = RESOLUTION * RESOLUTION * 3
    assert run.other_static_ram_bytes < frame_bytes
    framed = build_patch_plan(load_graph(build.build_dir / "model.ek"), "9:3")
    assert run.arena_bytes <= framed.memory.peak_bytes


def branching_graph():
    """Two branches read different windows of one tensor (two 3x3 depthwise vs one): the shorter one
    reads a crop; the stage ends with a 3x3 max pool (a tile copy)."""
    builder = Int8Builder((20, 20), 3, seed=5)
    y = builder.conv(builder.graph.inputs[0], 8, kernel=3, stride=2)
    long_branch = builder.depthwise(builder.depthwise(y))
    short_branch = builder.depthwise(y)
    x = builder.pool(builder.add(long_branch, short_branch), "max_pool2d", 3, 1)
    x = builder.conv(x, 8)
    return builder.head(x), x


def test_crop_and_tile_copies(tmp_path):
    graph, _ = branching_graph()
    path = tmp_path / "branching.ek"
    save_graph(graph, path)
    split = next(i for i, node in enumerate(graph.nodes) if node.op == "max_pool2d")
    spec = f"{split}:3"
    build = compile_model(str(path), "cortex-m7", patch=spec, output=tmp_path / "b")
    assert build.manifest["patch"]["crops"] >= 1 and build.manifest["patch"]["tile_copy"]
    run = run_build(build.build_dir, timeout_s=120)
    assert_matches_both_references(build, run, spec)
    assert_instructions_line_up(build, run)


def streaming_graph(seed: int):
    """A random MobileNet-like DAG whose 1x1 convolutions shrink and widen the pixels (the two cases
    of writing an output over its input row by row), with residual adds."""
    rng = random.Random(seed)
    builder = Int8Builder((rng.randint(16, 22), rng.randint(16, 22)), 3, seed)
    x = builder.conv(builder.graph.inputs[0], rng.choice((8, 12)), kernel=3, stride=2)
    x = builder.conv(builder.depthwise(x), rng.choice((4, 6)), activation=None)
    for _ in range(rng.randint(2, 3)):
        x = builder.inverted_residual(x, expand=rng.choice((3, 4)), stride=rng.choice((1, 1, 2)),
                                      out_channels=rng.choice((None, 8)))
    return builder.head(x)


@pytest.mark.parametrize("seed, order", [(0, "row-major"), (1, "serpentine"), (2, "column-major")])
def test_streaming_in_place_writes_and_patch_orders_are_bit_exact(seed, order, tmp_path):
    """Every new alias in one firmware: 1x1 convs written over their inputs (by rows in the working
    block; layer by layer after the split, two pixels per call, or one row where the pixel count is
    odd), depthwise over its input through the DSP kernel's row window, the split tensor over dead
    frame rows, and the patches in each order; the firmware must equal run_graph and run_patched
    byte for byte."""
    graph = streaming_graph(seed)
    path = tmp_path / "streaming.ek"
    save_graph(graph, path)
    split = max(i for i, node in enumerate(graph.nodes[: len(graph.nodes) // 2])
                if stage_problem(graph, node.output) is None)
    spec = f"{split}:2:{order}"
    schedule = build_patch_plan(graph, spec)
    reasons = {alias.reason for plan in (schedule.memory.working, schedule.memory.arena)
               for alias in plan.aliases.values()}
    assert schedule.stage.order == order and "in-place 1x1 conv, streamed" in reasons
    layer = schedule.memory.arena.aliases.values()
    assert any(alias.reason == "in-place depthwise" for alias in layer)
    row_bytes = {alias.tensor: np.prod(graph.tensors[alias.tensor].shape[2:]) for alias in layer}
    assert any(alias.reason == "in-place 1x1 conv, streamed" and -alias.shift < row_bytes[alias.tensor]
               for alias in layer)  # less than a row: a shrinking conv called on pixel pairs
    assert "split tensor over dead frame rows" in reasons and schedule.memory.frame_reuse_bytes > 0
    build = compile_model(str(path), "cortex-m7", patch=spec, output=tmp_path / "b")
    chosen = build.manifest["patch"]["chosen"]
    assert chosen["order"] == order and chosen["activation_peak_bytes"] == schedule.memory.peak_bytes
    run = run_build(build.build_dir, timeout_s=120)
    assert_matches_both_references(build, run, spec)
    frame = random_frame(graph, seed)
    np.testing.assert_array_equal(run_patched(schedule.stage, frame).outputs[graph.outputs[0]],
                                  run_graph(graph, [frame], mode="int8")[graph.outputs[0]])
