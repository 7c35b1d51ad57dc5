"""Description: place buffers in the arena: TFLite Micro's greedy-by-size planner and a first-fit variant.

Both allocators are one first-fit placement run over the buffers in a different order
(``greedy_memory_planner.h`` in TFLite Micro describes the same algorithm):

1. Order the buffers. Greedy by size takes the largest first (ties keep the schedule order);
   first fit by first use takes them in the order the schedule creates them, larger first.
2. Take the next buffer. Collect the buffers already placed whose live ranges intersect its own;
   only those constrain it, everything else may share its bytes.
3. Walk those in increasing offset order with a candidate offset that starts at 0: if the buffer
   fits between the candidate and the start of the next placed buffer, stop; otherwise move the
   candidate past the end of that placed buffer, rounded up to the alignment.
4. Place the buffer at the candidate (aligned by construction) and go back to step 2.
5. The arena size is the highest end of any buffer.

Placing big buffers first leaves the small ones to fill the gaps between them, which is why greedy
by size is usually close to the lower bound (the largest sum of sizes live at one step). Neither
order is optimal in general (the problem is NP-hard), and on some graphs placing buffers in
schedule order fragments less, so ``plan_memory`` runs every allocator and keeps the smallest arena.
"""

from collections.abc import Callable, Iterable

from edgekit.memory.buffer_sharing import Buffer


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _lowest_offset(buffer: Buffer, placed: list[tuple[int, Buffer]], alignment: int) -> int:
    """Steps 2 and 3: the lowest aligned offset where ``buffer`` clashes with no placed buffer."""
    candidate = 0
    clashing = sorted(((offset, other) for offset, other in placed if other.live.overlaps(buffer.live)),
                      key=lambda pair: pair[0])
    for offset, other in clashing:
        if candidate + buffer.size <= offset:
            break
        candidate = max(candidate, align_up(offset + other.size, alignment))
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


#: Every allocator plan_memory tries, in order of preference when arenas tie.
ALLOCATORS: dict[str, Callable[[list[Buffer], int], dict[str, int]]] = {
    "greedy_by_size": greedy_by_size,
    "first_fit_by_first_use": first_fit_by_first_use,
}


def arena_end(buffers: list[Buffer], offsets: dict[str, int]) -> int:
    """Bytes the arena needs for ``offsets``: the highest end of any buffer."""
    return max((offsets[b.name] + b.size for b in buffers), default=0)
