"""Description: kernel scratch (im2col windows, int16-widened rows, depthwise channel planes) in the arena.

A kernel's scratch is needed only during its own step, so it may sit on any arena bytes that no tensor
live at that step holds. ``place_scratch`` gives every step that needs scratch the lowest aligned gap
among the tensors live then, or the bytes just above them (the arena then grows), and returns the plan
with those placements; ``verify_plan`` checks them like tensors. Scratch of different steps may share
bytes: no kernel keeps anything in its scratch from one call to the next.
"""

from dataclasses import dataclass, replace

from edgekit.memory.greedy_allocation import lowest_allowed


@dataclass(frozen=True)
class ScratchPlacement:
    """Bytes [offset, offset + size) of the arena that step ``step`` (node ``node``) uses as scratch."""

    step: int
    node: str
    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


def lowest_gap(taken: list[tuple[int, int]], size: int, alignment: int) -> int:
    """The lowest aligned offset where ``size`` bytes touch none of the [start, end) ranges ``taken``."""
    return lowest_allowed(((start - size, end) for start, end in taken), alignment)


def place_scratch(plan, needs: dict[int, tuple[str, int]]):
    """``plan`` (a ``MemoryPlan``) with the scratch of ``needs`` (step -> (node, bytes)) placed in its
    arena, grown where no gap is large enough."""
    placed = []
    arena = plan.arena_bytes
    for step, (node, size) in sorted(needs.items()):
        taken = [(p.offset, p.end) for p in plan.tensors.values() if step in p.live]
        offset = lowest_gap(taken, size, plan.alignment)
        placed.append(ScratchPlacement(step, node, offset, size))
        arena = max(arena, offset + size)
    return replace(plan, arena_bytes=arena, scratch=tuple(placed))
