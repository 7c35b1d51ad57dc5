"""Description: check a memory plan on its own, whatever allocator made it.

The planner's bookkeeping is not trusted: ``verify_plan`` looks only at the placements (and, when
given the graph, recomputes the live ranges). A failure is a bug in edgekit, not a user error, so
``PlanError`` is a plain Exception that keeps its traceback; its message names both tensors with
their byte ranges and live ranges, like Vela's AllocationError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit.memory.live_range import live_ranges

if TYPE_CHECKING:  # plan.py imports this module to check every plan it makes
    from edgekit.ir import Graph
    from edgekit.memory.plan import MemoryPlan, TensorPlacement


class PlanError(Exception):
    """A memory plan breaks an invariant (overlap, alignment, arena size, coverage)."""


def _describe(p: TensorPlacement) -> str:
    return f"{p.tensor!r} (bytes [{p.offset}, {p.end}), steps {p.live.first}..{p.live.last})"


def _view_root(plan: MemoryPlan, name: str) -> str:
    """The tensor that ``name`` is a (chain of) read-only view(s) of, or ``name`` itself."""
    alias = plan.aliases.get(name)
    while alias is not None and not alias.in_place:
        name = alias.source
        alias = plan.aliases.get(name)
    return name


def _is_handover(plan: MemoryPlan, a: TensorPlacement, b: TensorPlacement) -> bool:
    """One tensor dies at the step where an in-place op writes the other."""
    earlier, later = sorted((a, b), key=lambda p: p.live.first)
    alias = plan.aliases.get(later.tensor)
    return earlier.live.last == later.live.first and alias is not None and alias.in_place


def _check_pair(plan: MemoryPlan, a: TensorPlacement, b: TensorPlacement) -> None:
    """Two tensors whose bytes overlap: fine if never live together, views of one another, or an
    in-place handover."""
    if not a.live.overlaps(b.live):
        return
    if a.buffer != b.buffer:
        raise PlanError(f"tensors {_describe(a)} and {_describe(b)} are live at the same time "
                        "and overlap in the arena")
    if not _is_handover(plan, a, b) and _view_root(plan, a.tensor) != _view_root(plan, b.tensor):
        raise PlanError(f"tensors {_describe(a)} and {_describe(b)} share a buffer but are live together "
                        "for more than the step of an in-place write")


def verify_plan(plan: MemoryPlan, graph: Graph | None = None) -> None:
    """Raise PlanError unless every offset is aligned and inside the arena, and any two tensors
    live at the same step either share no byte or legitimately share a buffer (a view, or an
    in-place write at the one step where the input dies). With ``graph``, also check that every
    activation is placed, at least as large as the tensor and live at least as long."""
    placements = sorted(plan.tensors.values(), key=lambda p: p.offset)
    for p in placements:
        if p.offset % plan.alignment:
            raise PlanError(f"tensor {_describe(p)} is not aligned to {plan.alignment} bytes")
        if p.offset < 0 or p.end > plan.arena_bytes:
            raise PlanError(f"tensor {_describe(p)} lies outside the arena of {plan.arena_bytes} bytes")
        owner = plan.tensors.get(p.buffer)
        if owner is None or owner.offset != p.offset:
            raise PlanError(f"tensor {_describe(p)} is not at the offset of its buffer {p.buffer!r}")
    for index, a in enumerate(placements):
        for b in placements[index + 1:]:
            if b.offset >= a.end:
                break  # sorted by offset: no later placement starts inside a
            _check_pair(plan, a, b)
    if graph is not None:
        _check_coverage(plan, graph)


def _check_coverage(plan: MemoryPlan, graph: Graph) -> None:
    for name, live in live_ranges(graph).items():
        p = plan.tensors.get(name)
        if p is None:
            raise PlanError(f"activation {name!r} has no place in the plan")
        if p.size < graph.tensors[name].nbytes:
            raise PlanError(f"tensor {_describe(p)} needs {graph.tensors[name].nbytes} bytes")
        if not (p.live.first <= live.first and live.last <= p.live.last):
            raise PlanError(f"tensor {_describe(p)} is live during steps {live.first}..{live.last}")
