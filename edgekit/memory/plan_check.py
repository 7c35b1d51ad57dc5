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
    """A memory plan breaks an invariant (overlap, alignment, arena size, coverage, read after overwrite)."""


def _describe(p: TensorPlacement) -> str:
    return f"{p.tensor!r} (bytes [{p.offset}, {p.end}), steps {p.live.first}..{p.live.last})"


def view_root(plan: MemoryPlan, name: str) -> str:
    """The tensor that ``name`` is a (chain of) read-only view(s) of, or ``name`` itself."""
    alias = plan.aliases.get(name)
    while alias is not None and not alias.in_place:
        name = alias.source
        alias = plan.aliases.get(name)
    return name


class _Prover:
    """Proves in-place writes from the ops' rules (``OpDef.buffer_share``) and the nodes' calls."""

    def __init__(self, plan: MemoryPlan, graph: Graph | None, accesses, extra_rules):
        from edgekit.memory.buffer_sharing import layer_accesses

        self.plan, self.graph, self.extra_rules = plan, graph, extra_rules
        self.nodes = {node.name: node for node in graph.nodes} if graph is not None else {}
        self.accesses = accesses or (layer_accesses(graph) if graph is not None else None)

    def handover(self, a: TensorPlacement, b: TensorPlacement) -> bool:
        """Whether one tensor is an in-place write over the other, at the one step where the other
        dies; PlanError when it is, but its op cannot write there without overwriting bytes it
        still reads."""
        for earlier, later in ((a, b), (b, a)):
            alias = self.plan.aliases.get(later.tensor)
            if (alias is not None and alias.in_place and earlier.live.last == later.live.first
                    and view_root(self.plan, alias.source) == view_root(self.plan, earlier.tensor)):
                self._prove(alias, self.plan.tensors[alias.source], later)
                return True
        return False

    def _prove(self, alias, source: TensorPlacement, output: TensorPlacement) -> None:
        from edgekit.memory.buffer_sharing import CHANNELWISE, STREAMING, buffer_rule, rule_kind
        from edgekit.memory.streaming import max_shift
        from edgekit.ops import OPS

        node = self.nodes.get(alias.node)
        rule = buffer_rule(self.graph, node, self.extra_rules) if node is not None else None
        kind = rule_kind(rule) if rule is not None else None
        shift = output.offset - source.offset
        where = f"{alias.node} writes {_describe(output)} over {_describe(source)}"
        if kind not in (CHANNELWISE, STREAMING):
            raise PlanError(f"{where}, but no in-place rule of its op allows it (check the plan with its graph)")
        if kind == CHANNELWISE:
            shapes = (self.graph.tensors[alias.source].shape, self.graph.tensors[alias.tensor].shape)
            if shift != 0 or output.size > source.size or not OPS[node.op].channelwise_overwrite_ok(node, self.graph,
                                                                                                    *shapes):
                raise PlanError(f"{where}: a channel-by-channel write must start at its source, be no larger and "
                                "write no input row its kernel has not read yet")
            return
        bound = min(max_shift(list(calls)) for calls in self.accesses(node, alias.source))
        if shift > bound:
            raise PlanError(f"{where}: read after overwrite, a later kernel call still reads the source there; "
                            f"the output must start at least {-bound} bytes below the source, not {-shift}")


def _check_pair(prover: _Prover, a: TensorPlacement, b: TensorPlacement) -> None:
    """Two tensors whose bytes overlap: fine if never live together, views of one another, or an
    in-place handover that its op's rule proves safe."""
    if not a.live.overlaps(b.live):
        return
    if a.buffer != b.buffer:
        raise PlanError(f"tensors {_describe(a)} and {_describe(b)} are live at the same time "
                        "and overlap in the arena")
    if view_root(prover.plan, a.tensor) != view_root(prover.plan, b.tensor) and not prover.handover(a, b):
        raise PlanError(f"tensors {_describe(a)} and {_describe(b)} share a buffer but are live together "
                        "for more than the step of an in-place write")


def verify_plan(plan: MemoryPlan, graph: Graph | None = None, accesses=None, extra_rules=None) -> None:
    """Raise PlanError unless every offset is aligned and inside the arena, and any two tensors
    live at the same step either share no byte or legitimately share a buffer: a view, or an
    in-place write at the one step where the input dies, which the op's rule must prove free of
    reads after overwrites (``accesses`` and ``extra_rules`` as in ``plan_memory``; a streaming
    write can only be proved with ``graph``). With ``graph``, also check that every activation is
    placed, at least as large as the tensor and live at least as long. Kernel scratch in the arena
    (``plan.scratch``) must miss every tensor live at its step."""
    placements = sorted(plan.tensors.values(), key=lambda p: p.offset)
    for p in placements:
        if p.offset % plan.alignment:
            raise PlanError(f"tensor {_describe(p)} is not aligned to {plan.alignment} bytes")
        if p.offset < 0 or p.end > plan.arena_bytes:
            raise PlanError(f"tensor {_describe(p)} lies outside the arena of {plan.arena_bytes} bytes")
        if p.buffer not in plan.tensors:
            raise PlanError(f"tensor {_describe(p)} belongs to buffer {p.buffer!r}, which is not in the plan")
    prover = _Prover(plan, graph, accesses, extra_rules)
    for index, a in enumerate(placements):
        for b in placements[index + 1:]:
            if b.offset >= a.end:
                break  # sorted by offset: no later placement starts inside a
            _check_pair(prover, a, b)
    verify_scratch(plan)
    if graph is not None:
        _check_coverage(plan, graph)


def verify_scratch(plan: MemoryPlan) -> None:
    """Raise PlanError unless each step's scratch is aligned, inside the arena, and on no byte of a
    tensor live at its step (part of ``verify_plan``; alone, for a plan whose tensors were checked)."""
    for s in plan.scratch:
        where = f"scratch of step {s.step} ({s.node}, bytes [{s.offset}, {s.end}))"
        if s.offset % plan.alignment:
            raise PlanError(f"{where} is not aligned to {plan.alignment} bytes")
        if s.offset < 0 or s.end > plan.arena_bytes:
            raise PlanError(f"{where} lies outside the arena of {plan.arena_bytes} bytes")
        for p in plan.tensors.values():
            if s.step in p.live and p.offset < s.end and s.offset < p.end:
                raise PlanError(f"{where} overlaps {_describe(p)}, live at that step")


def _check_coverage(plan: MemoryPlan, graph: Graph) -> None:
    for name, live in live_ranges(graph).items():
        p = plan.tensors.get(name)
        if p is None:
            raise PlanError(f"activation {name!r} has no place in the plan")
        if p.size < graph.tensors[name].nbytes:
            raise PlanError(f"tensor {_describe(p)} needs {graph.tensors[name].nbytes} bytes")
        if not (p.live.first <= live.first and live.last <= p.live.last):
            raise PlanError(f"tensor {_describe(p)} is live during steps {live.first}..{live.last}")
