"""verify_steps (edgekit/codegen/step_check.py): the plan's steps replayed byte by byte.

The plans the code generator makes pass; a copy of one with a buffer moved (its placement and every
step's bytes of it together, as a wrong planner would move them), a tile shifted, the stage scratch
put on a working buffer or a buffer pushed past the arena's end is refused, with the step that reads
the lost value and the step that overwrote it.
"""

from dataclasses import replace

import pytest
from test_step_plan import small_net

from edgekit.codegen.program import emit_program
from edgekit.codegen.step_check import verify_steps
from edgekit.codegen.step_plan import ARENA, PATCH
from edgekit.memory import PlanError, plan_memory
from edgekit.memory.patch_search import build_patch_plan
from edgekit.target import load_target

pytestmark = pytest.mark.usefixtures("private_edgekit_home")


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """small_net's plan layer by layer and on 2x2 patches after its residual add (split = add4_out,
    which the plan lays over frame rows no later patch reads)."""
    graph, target = small_net(), load_target("cortex-m7")
    folder = tmp_path_factory.mktemp("steps")
    layer = emit_program(graph, plan_memory(graph), target, folder / "layer").plan
    schedule = build_patch_plan(graph, "3:2")
    patched = emit_program(graph, schedule.memory.arena, target, folder / "patched", schedule).plan
    return layer, patched


def _moved(plan, space: str, tensor: str, offset: int):
    """``plan`` with ``tensor`` placed at ``offset`` and every step's bytes of it moved along."""
    owner = plan.working if space == PATCH else plan.memory
    placement = owner.tensors[tensor]
    shift = offset - (placement.offset + (plan.working_offset if space == PATCH else 0))
    moved_owner = replace(owner, tensors={**owner.tensors, tensor: replace(placement,
                                                                           offset=placement.offset + shift)})
    steps = [replace(step, buffers=tuple(replace(b, offset=b.offset + shift) if (b.space, b.tensor) == (space, tensor)
                                         else b for b in step.buffers))
             for step in plan.steps]
    if space == PATCH:
        return replace(plan, working=moved_owner, steps=steps)
    return replace(plan, memory=moved_owner, steps=steps)


def test_the_code_generators_plans_pass(plans):
    for plan in plans:
        verify_steps(plan)


def test_a_patch_buffer_moved_onto_a_live_region_is_refused(plans):
    """conv2d3's output moved onto conv2d1's region, which the residual add still reads."""
    _, plan = plans
    onto = plan.working_offset + plan.working.offset("conv2d1_out")
    overwritten = (r"\(add4 add on patch 0,0\) reads 'conv2d1_out' of patch 0,0 .* holds 'conv2d3_out' of patch 0,0, "
                   r"written by step \d+ \(conv2d3 conv2d on patch 0,0\)")
    with pytest.raises(PlanError, match=overwritten):
        verify_steps(_moved(plan, PATCH, "conv2d3_out", onto))


def test_keep_a_patch_buffer_moved_onto_a_dead_region(plans):
    """The same move onto the input region, which nothing reads after conv2d1: allowed."""
    _, plan = plans
    verify_steps(_moved(plan, PATCH, "conv2d3_out", plan.working_offset + plan.working.offset("x")))


def test_a_frame_under_tiles_it_still_needs_is_refused(plans):
    """The frame moved down, so the first patch's tile lands on frame rows a later patch copies."""
    _, plan = plans
    assert plan.memory.offset("x") > 16  # the split tensor reuses only frame rows no later patch reads
    with pytest.raises(PlanError, match=r"\(conv2d1 patch_input on patch \d,\d\) reads 'x' .* holds 'add4_out'"):
        verify_steps(_moved(plan, ARENA, "x", 16))


def test_tiles_that_leave_a_gap_in_the_split_tensor_are_refused(plans):
    """Patch 0,0's tile written one pixel to the right: a column of the split tensor is never written."""
    _, plan = plans
    steps = list(plan.steps)
    index, step = next((i, s) for i, s in enumerate(steps) if s.node == "add4" and s.patch == (0, 0))
    out = step.buffers[-1]
    steps[index] = replace(step, buffers=step.buffers[:-1] + (replace(out, offset=out.offset + 8),))
    with pytest.raises(PlanError, match=r"reads 'add4_out' at bytes \[0, 200\), but byte 0 holds nothing"):
        verify_steps(replace(plan, steps=steps))


def test_stage_scratch_on_a_working_buffer_is_refused(plans):
    _, plan = plans
    onto = plan.working_offset + plan.working.offset("conv2d1_out")
    steps = [replace(s, scratch_offset=onto) if s.scratch_offset is not None else s for s in plan.steps]
    with pytest.raises(PlanError, match=r"reads 'conv2d1_out' of patch 0,0 .* holds scratch"):
        verify_steps(replace(plan, steps=steps))


def test_a_patch_buffer_past_the_arena_is_refused(plans):
    _, plan = plans
    end = plan.memory.arena_bytes
    with pytest.raises(PlanError, match=r"patch_input on patch 0,0\): output 'x' at bytes \[\d+, \d+\) lies "
                                        r"outside the arena"):
        verify_steps(_moved(plan, PATCH, "x", end - 16))


def test_a_layer_buffer_moved_onto_a_live_tensor_is_refused(plans):
    """The one-patch case: layer by layer, conv2d3's output moved onto conv2d1's, which the add reads."""
    plan, _ = plans
    with pytest.raises(PlanError, match=r"\(add4 add\) reads 'conv2d1_out' .* holds 'conv2d3_out'"):
        verify_steps(_moved(plan, ARENA, "conv2d3_out", plan.memory.offset("conv2d1_out")))


def test_an_output_over_an_input_it_does_not_overwrite_in_place_is_refused(plans):
    """conv2d1's output moved onto the input region it reads: no in-place rule covers a 3x3 convolution."""
    _, plan = plans
    with pytest.raises(PlanError, match=r"\(conv2d1 conv2d on patch 0,0\) writes 'conv2d1_out' .* over its input "
                                        r"'x', which it does not overwrite in place"):
        verify_steps(_moved(plan, PATCH, "conv2d1_out", plan.working_offset + plan.working.offset("x")))
