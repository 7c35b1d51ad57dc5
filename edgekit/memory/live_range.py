"""Description: the live range of every activation tensor, in steps of the static schedule.

The firmware runs ``graph.nodes`` in list order; step ``i`` is the run of node ``i``. A tensor needs
its bytes from the step that writes it to the last step that reads it, both included:

- a tensor produced by node ``i`` starts at step ``i``;
- a graph input starts at step 0 (the caller writes it into the arena before node 0 runs);
- a tensor ends at the step of its last consumer; a graph output ends at the last step (the caller
  reads it after the run), and a tensor nobody reads ends where it starts (it is still written).

Constants live in flash and have no range. Two tensors may share bytes only if their ranges do not
intersect; a node's inputs and outputs are all live at its step, so an output never lands on one of
its inputs unless a sharing rule (``buffer_sharing.py``) says the op allows it.
"""

from dataclasses import dataclass

from edgekit.ir import Graph


@dataclass(frozen=True)
class LiveRange:
    """Steps ``first`` to ``last``, both included."""

    first: int
    last: int

    def overlaps(self, other: "LiveRange") -> bool:
        return self.first <= other.last and other.first <= self.last

    def __contains__(self, step: int) -> bool:
        return self.first <= step <= self.last

    def union(self, other: "LiveRange") -> "LiveRange":
        """The smallest range covering both (what a buffer shared by two tensors must span)."""
        return LiveRange(min(self.first, other.first), max(self.last, other.last))


def live_ranges(graph: Graph) -> dict[str, LiveRange]:
    """The live range of every non-constant tensor that the graph defines, inputs first."""
    last_step = max(len(graph.nodes) - 1, 0)
    first = {name: 0 for name in graph.inputs}
    last = {}
    for step, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = step
        for name in node.outputs:
            first[name] = step
    for name in graph.outputs:
        last[name] = last_step
    return {
        name: LiveRange(start, last.get(name, start))
        for name, start in first.items()
        if not graph.tensors[name].is_constant
    }
