"""Description: the static memory plan: an arena offset for every activation tensor.

``plan_memory`` computes live ranges, groups tensors that may share bytes (reshape views, in-place
ops), runs every allocator of ``greedy_allocation.ALLOCATORS`` and keeps the smallest arena, then
checks the result with ``verify_plan`` before anyone can use it. The plan also records what the
report needs: the bytes live at every step and which tensors make them up, and the lower bound
(the largest sum of buffer sizes live at one step), which no placement of these buffers can beat.
"""

from dataclasses import dataclass

from edgekit.ir import Graph
from edgekit.memory.buffer_sharing import AccessMap, Alias, Buffer, scratch_bytes, share_buffers
from edgekit.memory.greedy_allocation import ALLOCATORS, arena_end, move_top_first
from edgekit.memory.live_range import LiveRange, live_ranges
from edgekit.memory.plan_check import verify_plan


@dataclass(frozen=True)
class TensorPlacement:
    """Where one tensor lives: bytes [offset, offset + size) during steps ``live``.

    ``buffer`` names the buffer (group) the tensor belongs to; tensors of one group (aliases) sit at
    fixed distances from each other and may overlap where an in-place rule allows it.
    """

    tensor: str
    offset: int
    size: int
    live: LiveRange
    buffer: str

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class StepUsage:
    """The arena bytes live while node ``node`` (step ``step``) runs, and the tensors behind them."""

    step: int
    node: str
    live_bytes: int
    tensors: tuple[str, ...]


@dataclass
class MemoryPlan:
    """An arena layout for one graph; offsets are in bytes from the start of the arena."""

    arena_bytes: int
    alignment: int
    tensors: dict[str, TensorPlacement]
    aliases: dict[str, Alias]
    steps: list[StepUsage]
    method: str
    lower_bound: int
    arena_by_method: dict[str, int]
    #: scratch bytes the plan's in-place writes need (depthwise channel planes), an estimate for the
    #: patch search; the code generator's kernels may need more, and places theirs in ``scratch``
    scratch_bytes: int = 0
    #: kernel scratch placed in the arena, one per step that needs it (``scratch_placement.place_scratch``)
    scratch: tuple = ()

    def offset(self, tensor: str) -> int:
        return self.tensors[tensor].offset

    @property
    def peak_step(self) -> StepUsage:
        """The step with the most live bytes (what the lower bound comes from)."""
        return max(self.steps, key=lambda usage: usage.live_bytes)


def plan_memory(graph: Graph, alignment: int = 16, inplace_add: bool = True, inplace_depthwise: bool = False,
                inplace_rows: bool = False, accesses: AccessMap | None = None,
                extra_rules: dict | None = None, verify: bool = True) -> MemoryPlan:
    """Plan the arena of ``graph`` (nodes in schedule order); see ``buffer_sharing`` for the flags,
    ``accesses`` and ``extra_rules``, which the plan checker uses too. ``verify=False`` skips the
    check, for a search that plans many candidates and checks the one it keeps (``verify_plan``)."""
    if alignment < 1:
        raise ValueError(f"alignment must be a positive number of bytes, got {alignment}")
    ranges = live_ranges(graph)
    aliases, buffers = share_buffers(graph, ranges, inplace_add=inplace_add, inplace_depthwise=inplace_depthwise,
                                     inplace_rows=inplace_rows, alignment=alignment, accesses=accesses,
                                     extra_rules=extra_rules)
    steps = _step_usage(graph, buffers, ranges)
    lower_bound = max((usage.live_bytes for usage in steps), default=0)
    layouts = {method: allocate(buffers, alignment) for method, allocate in ALLOCATORS.items()}
    arena_by_method = {method: arena_end(buffers, offsets) for method, offsets in layouts.items()}
    method = min(arena_by_method, key=arena_by_method.get)
    offsets = layouts[method]
    if arena_by_method[method] > lower_bound:
        repaired = move_top_first(buffers, offsets, alignment)
        if arena_end(buffers, repaired) < arena_by_method[method]:
            method, offsets = f"{method}+move_top_first", repaired
            arena_by_method[method] = arena_end(buffers, offsets)
    placements = {
        name: TensorPlacement(name, offsets[buffer.name] + buffer.offsets.get(name, 0), graph.tensors[name].nbytes,
                              ranges[name], buffer.name)
        for buffer in buffers for name in buffer.tensors
    }
    plan = MemoryPlan(
        arena_bytes=arena_by_method[method],
        alignment=alignment,
        tensors=placements,
        aliases=aliases,
        steps=steps,
        method=method,
        lower_bound=lower_bound,
        arena_by_method=arena_by_method,
        scratch_bytes=scratch_bytes(graph, aliases),
    )
    if verify:
        verify_plan(plan, graph, accesses, extra_rules)
    return plan


def _step_usage(graph: Graph, buffers: list[Buffer], ranges: dict[str, LiveRange]) -> list[StepUsage]:
    """Per step: the bytes of the buffers live then (of a group, the span of its tensors live then),
    and the tensors live then."""
    usage = []
    for step, node in enumerate(graph.nodes):
        live_bytes = sum(buffer.bytes_at(step) for buffer in buffers if step in buffer.live)
        tensors = tuple(name for name, live in ranges.items() if step in live)
        usage.append(StepUsage(step, node.name, live_bytes, tensors))
    return usage
