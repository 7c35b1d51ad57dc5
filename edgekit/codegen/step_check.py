"""Description: check a Plan's steps byte by byte, replaying them in the order the firmware runs them.

``verify_plan`` proves a memory plan from its tensor placements and live ranges; the steps the code
generator prints are a second description of the same bytes (patch regions, row strides, copies,
scratch), which nothing else checks. ``verify_steps`` replays them over an arena that records, for
every byte, which tensor value it holds and which step wrote it:

1. every buffer lies inside the arena and inside its tensor's placement (the arena plan's, or for a
   patch buffer the working plan's, inside the working block); every scratch inside the arena;
2. a step's scratch is written first (a kernel may use it at any time while it runs), then each byte
   a step reads must still hold the value it reads: that tensor, written earlier (the graph input
   from the start), and for a patch buffer written on the same patch;
3. a step's output may cover bytes that it reads only where the plan made it overwrite that input
   (an in-place alias, proved by the op's rule in ``verify_plan``);
4. at the end every graph output still holds its value.

So a buffer moved onto a tensor still to be read, a tile written over frame rows a later patch still
copies, a scratch on a live region or a split tensor whose tiles leave a gap all fail here, naming
the two steps. A failure is a bug in edgekit (``PlanError``, like ``verify_plan``).
"""

import numpy as np

from edgekit.codegen.step_plan import ARENA, PATCH, whole_buffer
from edgekit.memory.plan_check import PlanError, view_root

_UNWRITTEN, _SCRATCH = -1, -2


def _describe(plan, index: int) -> str:
    if index < 0:
        return "the application (the graph input, before the first step)"
    step = plan.steps[index]
    where = f" on patch {step.patch[0]},{step.patch[1]}" if step.stage == "patch" else ""
    return f"step {index} ({step.node} {step.call.op}{where})"


class _Arena:
    """What every arena byte holds (a value id) and which step wrote it."""

    def __init__(self, plan):
        self.plan = plan
        self.value = np.full(plan.memory.arena_bytes, _UNWRITTEN, np.int64)
        self.writer = np.full(plan.memory.arena_bytes, -1, np.int64)
        self.ids: dict[tuple, int] = {}
        self.names: list[str] = []

    def value_id(self, space: str, tensor: str, patch) -> int:
        owner = self.plan.working if space == PATCH else self.plan.memory
        key = (space, view_root(owner, tensor), patch if space == PATCH else None)
        if key not in self.ids:
            self.ids[key] = len(self.names)
            self.names.append(f"{tensor!r}" + (f" of patch {patch[0]},{patch[1]}" if space == PATCH else ""))
        return self.ids[key]

    def write(self, use, value: int, step: int) -> None:
        _rows(self.value, use)[...] = value
        _rows(self.writer, use)[...] = step

    def expect(self, use, value: int, reader: int | None) -> None:
        """Raise unless every byte of ``use`` holds ``value`` when step ``reader`` (None: the output copy
        after the last step) reads it."""
        mismatch = _rows(self.value, use) != value
        if mismatch.any():
            row, column = (int(i) for i in np.argwhere(mismatch)[0])
            at = use.offset + row * use.row_stride + column
            held = int(self.value[at])
            if held == _UNWRITTEN:
                what = "nothing (no step wrote it)"
            else:
                what = f"{'scratch' if held == _SCRATCH else self.names[held]}, written by " \
                       f"{_describe(self.plan, int(self.writer[at]))}"
            start = use.offset + row * use.row_stride
            who = _describe(self.plan, reader) if reader is not None else "the output copy at the end"
            raise PlanError(f"{who} reads {self.names[value]} at bytes [{start}, {start + use.row_bytes}), but byte "
                            f"{at} holds {what}")


def _rows(array: np.ndarray, use) -> np.ndarray:
    """The bytes of ``use`` in a per-byte ``array``, as a (rows, row_bytes) view."""
    if use.offset < 0 or use.offset + use.size > array.size:
        raise PlanError(f"{use.tensor!r} at bytes [{use.offset}, {use.offset + use.size}) lies outside the arena of "
                        f"{array.size} bytes")
    return np.lib.stride_tricks.as_strided(array[use.offset:], (use.rows, use.row_bytes),
                                           (use.row_stride * array.itemsize, array.itemsize), writeable=True)


def _placement(plan, use) -> tuple[int, int]:
    if use.space == PATCH:
        p = plan.working.tensors[use.tensor]
        return plan.working_offset + p.offset, plan.working_offset + p.end
    p = plan.memory.tensors[use.tensor]
    return p.offset, p.end


def _check_bounds(plan, index: int, step) -> None:
    arena = plan.memory.arena_bytes
    where = _describe(plan, index)
    for use in step.buffers:
        low, high = _placement(plan, use)
        if use.offset < 0 or use.offset + use.size > arena:
            raise PlanError(f"{where}: {use.role} {use.tensor!r} at bytes [{use.offset}, {use.offset + use.size}) "
                            f"lies outside the arena of {arena} bytes")
        if use.offset < low or use.offset + use.size > high:
            raise PlanError(f"{where}: {use.role} {use.tensor!r} at bytes [{use.offset}, {use.offset + use.size}) "
                            f"lies outside its placement [{low}, {high})")
    if step.call.scratch_bytes and not 0 <= step.scratch_offset <= arena - step.call.scratch_bytes:
        raise PlanError(f"{where}: scratch at bytes [{step.scratch_offset}, "
                        f"{step.scratch_offset + step.call.scratch_bytes}) lies outside the arena of {arena} bytes")


def _overwritten_input(plan, use) -> tuple[str, str] | None:
    """(space, view root) of the input that the output ``use`` may overwrite in place, or None."""
    owner = plan.working if use.space == PATCH else plan.memory
    alias = owner.aliases.get(use.tensor)
    if alias is None or not alias.in_place:
        return None
    return use.space, view_root(owner, alias.source)


def _check_overlaps(plan, index: int, reads, writes) -> None:
    for out in writes:
        allowed = _overwritten_input(plan, out)
        for read in reads:
            owner = plan.working if read.space == PATCH else plan.memory
            if (read.space, view_root(owner, read.tensor)) == allowed:
                continue
            if out.offset >= read.offset + read.size or read.offset >= out.offset + out.size:
                continue
            read_bytes = np.zeros(plan.memory.arena_bytes, bool)
            _rows(read_bytes, read)[...] = True
            if _rows(read_bytes, out).any():
                raise PlanError(f"{_describe(plan, index)} writes {out.tensor!r} at bytes [{out.offset}, "
                                f"{out.offset + out.size}) over its input {read.tensor!r}, which it does not overwrite "
                                "in place")


def verify_steps(plan) -> None:
    """Raise PlanError unless the steps of ``plan`` (a ``step_plan.Plan``) keep every value they read
    (see the module doc)."""
    arena = _Arena(plan)
    for name in plan.inputs:
        if name in plan.memory.tensors:
            p = plan.memory.tensors[name]
            arena.write(whole_buffer("output", name, p.offset, p.size), arena.value_id(ARENA, name, None), -1)
    for index, step in enumerate(plan.steps):
        _check_bounds(plan, index, step)
        if step.call.scratch_bytes:
            scratch = whole_buffer("output", "ek_scratch", step.scratch_offset, step.call.scratch_bytes)
            arena.write(scratch, _SCRATCH, index)
        reads = [use for use in step.buffers if use.role == "input"]
        writes = [use for use in step.buffers if use.role == "output"]
        for use in reads:
            arena.expect(use, arena.value_id(use.space, use.tensor, step.patch), index)
        if step.call.kernel is None and step.call.body is None:
            continue  # a view: its output is its input's bytes
        _check_overlaps(plan, index, reads, writes)
        for use in writes:
            arena.write(use, arena.value_id(use.space, use.tensor, step.patch), index)
    for name in plan.outputs:
        p = plan.memory.tensors[name]
        arena.expect(whole_buffer("input", name, p.offset, p.size), arena.value_id(ARENA, name, None), None)
