"""The Plan (edgekit/codegen/step_plan.py): what the code generator prints, saved as plan.json.

A compiled model's plan.json is checked against facts computed here from the saved graph and the
generated C, not from the plan's own bookkeeping: every buffer is its tensor's size, inside the arena
model.h declares; no scratch touches a tensor live at its step; each step's kernel is the one model.c
calls for it, in order, and its variant is the one in that kernel's name; and the firmware stays
bit-exact in QEMU. A plan whose scratch is moved onto a live tensor or out of the arena is refused.
"""

import json
import re
from dataclasses import replace

import pytest
from test_kernels_qemu import Builder, same

from edgekit.build_folder import BuildFolder
from edgekit.compiler import compile_model
from edgekit.ir.serialize import save_graph
from edgekit.memory import PlanError, plan_memory, verify_plan
from edgekit.memory.scratch_placement import ScratchPlacement, place_scratch
from edgekit.runner import run_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]


def small_net():
    """A 3x3 first layer (im2col window scratch), depthwise (plane scratch), pointwise, a residual add
    and a fully connected layer (widened-row scratch)."""
    b = Builder(7, (1, 10, 9, 3))
    y = b.conv2d("x", 8, (3, 3), stride=(2, 2), padding=same((10, 9), (3, 3), (2, 2)), activation="relu")
    z = b.depthwise(y, (3, 3), padding=(1, 1, 1, 1), activation="relu")
    z = b.add(y, b.conv2d(z, 8, (1, 1)))
    return b.finish(b.fully_connected(b.reshape(z, (1, 200)), 5))


def _live_at(graph, step: int) -> set[str]:
    """Activations whose bytes are needed while node ``step`` runs: written at or before it and read
    at or after it (graph outputs until the end, graph inputs from the start)."""
    produced = {name: 0 for name in graph.inputs}
    last_read = {name: len(graph.nodes) for name in graph.outputs}
    for i, node in enumerate(graph.nodes):
        produced.setdefault(node.output, i)
        for name in node.inputs:
            if not graph.tensors[name].is_constant:
                last_read[name] = max(last_read.get(name, i), i)
    return {name for name, first in produced.items() if first <= step <= last_read.get(name, first)}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan")
    save_graph(small_net(), folder / "small.ek")
    return compile_model(str(folder / "small.ek"), "cortex-m7", output=folder / "build").build_dir


def test_plan_json_matches_the_graph_and_the_generated_c(build):
    folder = BuildFolder(build)
    plan, graph = folder.plan(), folder.load_graph()
    arena = int(re.search(r"#define EK_ARENA_SIZE (\d+)", (folder.sources / "model.h").read_text()).group(1))
    assert plan["arena_bytes"] == arena == folder.manifest()["arena_bytes"]
    steps = plan["steps"]
    assert [s["node"] for s in steps] == [node.name for node in graph.nodes]
    scratched = 0
    for index, (step, node) in enumerate(zip(steps, graph.nodes)):
        assert step["op"] == node.op and step["stage"] == "layer"
        assert {b["tensor"] for b in step["buffers"]} == _live_at(graph, index) & {*node.inputs, node.output}
        for b in step["buffers"]:
            assert b["size"] == graph.tensors[b["tensor"]].nbytes
            assert 0 <= b["offset"] and b["offset"] + b["size"] <= arena
        scratch = step["scratch"]
        if scratch is None:
            continue
        scratched += 1
        assert scratch["offset"] % 4 == 0
        start, end = scratch["offset"], scratch["offset"] + scratch["bytes"]
        assert 0 <= start and end <= arena
        for name in _live_at(graph, index):
            other = next(b for s in steps for b in s["buffers"] if b["tensor"] == name)
            assert end <= other["offset"] or other["offset"] + other["size"] <= start, (step["node"], name)
    assert scratched >= 3  # the 3x3 window, the depthwise plane and the widened fully connected row
    assert plan["scratch_bytes"] == max(s["scratch"]["bytes"] for s in steps if s["scratch"])
    model_c = (folder.sources / "model.c").read_text()
    assert "static int8_t ek_scratch" not in model_c
    called = re.findall(r"EK_CHECK\((ek_\w+)\(", model_c)
    assert called == [s["kernel"] for s in steps if s["kernel"] is not None]
    for step in steps:
        if step["kernel"] is not None:
            assert re.fullmatch(r"ek_\w+?_s8_(\w+?)(_narrow)?_[0-9a-f]{8}", step["kernel"]).group(1) == step["variant"]
    assert {s["variant"] for s in steps if s["op"] in ("conv2d", "fully_connected")} <= {"dsp", "dsp_w16"}


def test_the_planned_firmware_is_bit_exact_in_qemu(build):
    result = run_build(build)
    assert result.bit_exact and result.inputs > 0


def _with_scratch(moved):
    graph = small_net()
    plan = place_scratch(plan_memory(graph), {0: (graph.nodes[0].name, 64)})
    verify_plan(plan, graph)
    return graph, replace(plan, scratch=(moved(plan),))


def test_verify_plan_refuses_scratch_on_a_live_tensor():
    graph, broken = _with_scratch(lambda plan: ScratchPlacement(0, "conv2d1", plan.offset("x"), 64))
    with pytest.raises(PlanError, match="scratch of step 0 .* overlaps 'x'"):
        verify_plan(broken, graph)


def test_verify_plan_refuses_scratch_outside_the_arena():
    graph, broken = _with_scratch(lambda plan: ScratchPlacement(0, "conv2d1", plan.arena_bytes // 16 * 16, 64))
    with pytest.raises(PlanError, match="outside the arena"):
        verify_plan(broken, graph)


@pytest.fixture(scope="module")
def patched(tmp_path_factory):
    """small_net on 2x2 patches after the residual add, emitted: (graph, schedule, program, model.c)."""
    from edgekit.codegen.program import emit_program
    from edgekit.memory.patch_search import build_patch_plan
    from edgekit.target import load_target

    graph = small_net()
    schedule = build_patch_plan(graph, "3:2")
    folder = tmp_path_factory.mktemp("patched")
    program = emit_program(graph, schedule.memory.arena, load_target("cortex-m7"), folder / "src", schedule)
    return graph, schedule, program, (folder / "src" / "model.c").read_text()


def test_a_patched_plan_names_each_steps_patch_and_region(patched):
    """Kernel steps: one per (patch, stage node) that computes something, in the patches' order; the
    last stage node's regions tile its output (the split tensor) exactly once."""
    graph, schedule, program, model_c = patched
    doc = json.loads(json.dumps(program.plan.to_json()))
    patch_steps = [s for s in doc["steps"] if s["stage"] == "patch" and not s["op"].startswith("patch_")]
    stage = graph.nodes[:4]
    assert [s["node"] for s in patch_steps[:4]] == [node.name for node in stage]
    assert sorted({tuple(s["patch"]) for s in patch_steps}) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    _, height, width, _ = graph.tensors[stage[-1].output].shape
    covered = [(r, c) for s in patch_steps if s["node"] == stage[-1].name
               for r in range(*s["output_region"]["rows"]) for c in range(*s["output_region"]["cols"])]
    assert sorted(covered) == [(r, c) for r in range(height) for c in range(width)]
    # the stage's kernels share one scratch, clear of the frame, the split tensor and the working block
    stage_scratch = {(s["scratch"]["offset"], s["scratch"]["bytes"]) for s in patch_steps if s["scratch"]}
    assert len({offset for offset, _ in stage_scratch}) == 1
    start = stage_scratch.pop()[0]
    end = start + max(s["scratch"]["bytes"] for s in patch_steps if s["scratch"])
    arena = schedule.memory.arena
    for name in (graph.inputs[0], stage[-1].output, schedule.memory.working_block):
        assert end <= arena.offset(name) or arena.tensors[name].end <= start, name
    assert end <= doc["arena_bytes"]
    assert "static int8_t ek_scratch" not in model_c and f"ek_scratch = ek_arena + {start};" in model_c


def test_patch_steps_name_the_bytes_of_their_regions(patched):
    """A patch step's buffers are its regions' bytes: rows of region width x channels, at the row stride
    of the buffer that holds them (the frame's or the split tensor's for arena buffers)."""
    graph, schedule, program, _ = patched
    doc = program.plan.to_json()
    arena = schedule.memory.arena
    x, split = graph.tensors[graph.inputs[0]], graph.tensors[graph.nodes[3].output]
    assert doc["working_block"] == {"offset": arena.offset(schedule.memory.working_block),
                                    "bytes": schedule.memory.working.arena_bytes}
    for step in doc["steps"]:
        region = step["output_region"]
        for b in step["buffers"]:
            assert 0 <= b["offset"] and b["offset"] + b["size"] <= doc["arena_bytes"]
            assert b["size"] == (b["rows"] - 1) * b["row_stride"] + b["row_bytes"]
        if step["op"] == "patch_input":  # the frame's rows of the patch's input region
            (frame, window) = step["buffers"]
            rows, cols = region["rows"], region["cols"]
            assert frame["tensor"] == x.name and frame["row_stride"] == x.shape[2] * x.shape[3]
            assert frame["offset"] == arena.offset(x.name) + (rows[0] * x.shape[2] + cols[0]) * x.shape[3]
            assert frame["rows"] == window["rows"] == rows[1] - rows[0]
            assert frame["row_bytes"] == window["row_bytes"] == window["row_stride"] == (cols[1] - cols[0]) * x.shape[3]
        if step["node"] == graph.nodes[3].name and step["op"] == "add":  # the add writes split rows itself
            out = step["buffers"][-1]
            rows, cols = region["rows"], region["cols"]
            assert out["tensor"] == split.name and out["space"] == "arena"
            assert out["offset"] == arena.offset(split.name) + (rows[0] * split.shape[2] + cols[0]) * split.shape[3]
            assert (out["rows"], out["row_bytes"], out["row_stride"]) == (
                rows[1] - rows[0], (cols[1] - cols[0]) * split.shape[3], split.shape[2] * split.shape[3])


def test_model_c_prints_the_plans_offsets(patched):
    """model.c's patch loop is the patch steps' statements in the plan's order, and each statement's
    arena addresses are exactly its buffers' offsets (row by row: at its buffers' row strides)."""
    _, _, program, model_c = patched
    printed = " ".join(model_c.split())  # the loop is indented once more than the statements
    position = printed.index("/* patch stage")
    for step in (s for s in program.plan.steps if s.stage == "patch"):
        statement = " ".join(step.call.c_statement().split())
        position = printed.index(statement, position) + len(statement)
        assert {int(n) for n in re.findall(r"ek_arena \+ (\d+)\)", statement)} == {b.offset for b in step.buffers}
        if "r * " in statement:
            assert {int(n) for n in re.findall(r"r \* (\d+)", statement)} == {b.row_stride for b in step.buffers}
