"""Description: place buffers in the arena: TFLite Micro's greedy-by-size planner and a first-fit variant.

Both allocators are one first-fit placement run over the buffers in a different order
(``greedy_memory_planner.h`` in TFLite Micro describes the same algorithm):

1. Order the buffers. Greedy by size takes the largest first (ties keep the schedule order);
   first fit by first use takes them in the order the schedule creates them, larger first.
2. Take the next buffer. Collect the buffers already placed whose live ranges intersect its own;
   only those constrain it, everything else may share its bytes. (A buffer that in-place ops
   formed is a rigid group of tensors; then tensors, not whole groups, must not clash.)
3. Walk those in increasing offset order with a candidate offset that starts at 0: if the buffer
   fits between the candidate and the start of the next placed buffer, stop; otherwise move the
   candidate past the end of that placed buffer, rounded up to the alignment.
4. Place the buffer at the candidate (aligned by construction) and go back to step 2.
5. The arena size is the highest end of any buffer.

Placing big buffers first leaves the small ones to fill the gaps between them, which is why greedy
by size is usually close to the lower bound (the largest sum of sizes live at one step). Neither
order is optimal in general (the problem is NP-hard), and on some graphs placing buffers in
schedule order, or those that make the busiest step first (``greedy_by_peak``), fragments less, so
``plan_memory`` runs every allocator and keeps the smallest arena.
"""

from collections.abc import Callable, Iterable

from edgekit.memory.buffer_sharing import Buffer


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _lowest_offset(buffer: Buffer, placed: list[tuple[int, Buffer]], alignment: int) -> int:
    """Steps 2 and 3: the lowest aligned offset where ``buffer`` clashes with no placed buffer.

    A buffer is a rigid group of tensors (``Buffer.members``); two tensors clash when they are
    live together and share a byte. For a group of one tensor this is TFLite Micro's walk."""
    forbidden = []  # open intervals (low, high) of group offsets where some member would clash
    for offset, other in placed:
        if not other.live.overlaps(buffer.live):
            continue
        for other_start, other_size, other_live in other.members():
            for start, size, live in buffer.members():
                if live.overlaps(other_live):
                    forbidden.append((offset + other_start - start - size, offset + other_start + other_size - start))
    return lowest_allowed(forbidden, alignment)


def lowest_allowed(forbidden: Iterable[tuple[int, int]], alignment: int) -> int:
    """Step 3's walk: the lowest aligned offset >= 0 inside none of the open intervals ``forbidden``."""
    candidate = 0
    for low, high in sorted(forbidden):
        if candidate <= low:
            break
        if candidate < high:
            candidate = align_up(high, alignment)
    return candidate


def place_in_order(buffers: Iterable[Buffer], alignment: int) -> dict[str, int]:
    """Offsets by buffer name, placing each buffer in turn at its lowest free offset."""
    placed: list[tuple[int, Buffer]] = []
    for buffer in buffers:
        placed.append((_lowest_offset(buffer, placed, alignment), buffer))
    return {buffer.name: offset for offset, buffer in placed}


def greedy_by_size(buffers: list[Buffer], alignment: int) -> dict[str, int]:
    return place_in_order(sorted(buffers, key=lambda b: -b.size), alignment)


def first_fit_by_first_use(buffers: list[Buffer], alignment: int) -> dict[str, int]:
    return place_in_order(sorted(buffers, key=lambda b: (b.live.first, -b.size)), alignment)


def greedy_by_peak(buffers: list[Buffer], alignment: int) -> dict[str, int]:
    """Largest first by the bytes each buffer holds at the busiest step (the lower bound's step),
    then by size: a group whose span is mostly tensors of other steps (a chain of in-place writes)
    then no longer takes the bottom of the arena from the tensors that make the peak."""
    steps = {live.first for buffer in buffers for _, _, live in buffer.members()}
    peak = max(steps, key=lambda step: sum(b.bytes_at(step) for b in buffers if step in b.live), default=0)
    return place_in_order(sorted(buffers, key=lambda b: (-b.bytes_at(peak), -b.size)), alignment)


#: Every allocator plan_memory tries, in order of preference when arenas tie.
ALLOCATORS: dict[str, Callable[[list[Buffer], int], dict[str, int]]] = {
    "greedy_by_size": greedy_by_size,
    "first_fit_by_first_use": first_fit_by_first_use,
    "greedy_by_peak": greedy_by_peak,
}


def move_top_first(buffers: list[Buffer], offsets: dict[str, int], alignment: int,
                   rounds: int = 6) -> dict[str, int]:
    """Improve a layout by placing again, in offset order, with the buffers that end at the top of
    the arena moved to the front; keep the best of ``rounds`` tries. Rigid groups of in-place
    tensors (a residual carried beside a chain of writes) are what end up on top when bigger
    groups took the bottom first; placed first, they take the bottom and the others fit around."""
    best, best_end = offsets, arena_end(buffers, offsets)
    order = sorted(buffers, key=lambda b: (offsets[b.name], -b.size))
    for _ in range(rounds):
        end = arena_end(buffers, offsets)
        top = [b for b in order if offsets[b.name] + b.size == end]
        order = top + [b for b in order if offsets[b.name] + b.size != end]
        offsets = place_in_order(order, alignment)
        if arena_end(buffers, offsets) < best_end:
            best, best_end = offsets, arena_end(buffers, offsets)
    return best


def arena_end(buffers: list[Buffer], offsets: dict[str, int]) -> int:
    """Bytes the arena needs for ``offsets``: the highest end of any buffer."""
    return max((offsets[b.name] + b.size for b in buffers), default=0)
