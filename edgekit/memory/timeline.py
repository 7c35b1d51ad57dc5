"""Description: an ASCII picture of a memory plan, one row per step, like TFLite Micro's PrintMemoryPlan.

Columns are arena bytes scaled to ``width``; each buffer has a letter (tensors that share a buffer
share its letter) and a row shows every tensor live at that step at its offset, '.' where the arena
is free. A legend maps letters to tensors. Overlaps are ``verify_plan``'s business, not the
picture's: where scaling puts two tensors in one column, the first one drawn keeps it.
"""

import string

from edgekit.memory.plan import MemoryPlan

_LETTERS = string.ascii_letters + string.digits


def _columns(offset: int, size: int, arena: int, width: int) -> range:
    start = min(offset * width // arena, width - 1)
    return range(start, max(start + 1, (offset + size) * width // arena))


def render_timeline(plan: MemoryPlan, width: int = 64) -> str:
    """The plan as text: a header, one row per step, then the legend."""
    buffers = list(dict.fromkeys(p.buffer for p in plan.tensors.values()))
    letter = {name: _LETTERS[i] if i < len(_LETTERS) else "*" for i, name in enumerate(buffers)}
    arena = max(plan.arena_bytes, 1)
    label = max((len(usage.node) for usage in plan.steps), default=4)
    lines = [
        f"arena {plan.arena_bytes} bytes ({plan.method}), lower bound {plan.lower_bound} bytes, "
        f"one column = {arena / width:.0f} bytes",
        f"{'step':>4} {'node':<{label}} {'live bytes':>10} |{'arena':<{width}}|",
    ]
    for usage in plan.steps:
        row = ["."] * width
        for name in usage.tensors:
            p = plan.tensors[name]
            for column in _columns(p.offset, p.size, arena, width):
                if row[column] == ".":
                    row[column] = letter[p.buffer]
        lines.append(f"{usage.step:>4} {usage.node:<{label}} {usage.live_bytes:>10} |{''.join(row)}|")
    lines.append("legend:")
    for p in plan.tensors.values():
        alias = plan.aliases.get(p.tensor)
        note = f", {alias.reason} of {alias.source!r}" if alias else ""
        lines.append(f"  {letter[p.buffer]} {p.tensor}: {p.size} bytes at {p.offset}, "
                     f"steps {p.live.first}..{p.live.last}{note}")
    return "\n".join(lines)
