"""Description: which tensors share one arena buffer: views and in-place ops.

A ``Buffer`` is a group of tensors placed at the same offset; the allocators place buffers, not
tensors. A node's output joins the buffer of one of its inputs when its op's ``buffer_share`` rule
(``edgekit/ops/<op>.py``, which says why it is safe) allows it and the rule is on (its ``option``
keyword of ``share_buffers``/``plan_memory``). Rules are applied node by node in schedule order, so
chains (reshape of an in-place add, ...) work. Today: ``reshape`` is a read-only view (always on),
``add`` may overwrite an input (``inplace_add``, default on), and ``depthwise_conv2d`` may overwrite
its input when the code generator runs it channel by channel (``inplace_depthwise``, default off).

An input "dies here" when no tensor of its buffer is read later and none is a graph output.
A shared buffer spans the union of its tensors' live ranges and the size of its largest tensor.
"""

from dataclasses import dataclass

from edgekit.ir import Graph
from edgekit.memory.live_range import LiveRange
from edgekit.ops import OPS


@dataclass(frozen=True)
class Alias:
    """``tensor`` (output of ``node``) reuses the bytes of ``source`` (one of its inputs).

    ``in_place`` is True when the node overwrites ``source`` (which dies there), False for a
    read-only view (reshape), where both tensors may stay live together.
    """

    tensor: str
    source: str
    node: str
    reason: str
    in_place: bool


@dataclass(frozen=True)
class Buffer:
    """Tensors placed at one offset; ``name`` is the first of them (the one that owns the buffer)."""

    name: str
    tensors: tuple[str, ...]
    size: int
    live: LiveRange


def share_buffers(graph: Graph, ranges: dict[str, LiveRange], *, inplace_add: bool = True,
                  inplace_depthwise: bool = False) -> tuple[dict[str, Alias], list[Buffer]]:
    """The aliases chosen (by aliased tensor) and the buffers they form (every tensor of ``ranges``)."""
    enabled = {None: True, "inplace_add": inplace_add, "inplace_depthwise": inplace_depthwise}
    owner = {name: name for name in ranges}
    members = {name: [name] for name in ranges}
    live = dict(ranges)
    aliases = {}
    for step, node in enumerate(graph.nodes):
        op = OPS.get(node.op)  # None for the planner's own steps (patch_stage, patch_crop): they share nothing
        rule = op.buffer_share if op is not None else None
        if rule is None or not enabled[rule.option]:
            continue
        for position in rule.sources(node):
            source = node.inputs[position]
            if source not in owner or not _fits(graph, node.output, source):
                continue
            root = owner[source]
            if rule.in_place and not _dies_at(graph, step, live[root], members[root]):
                continue
            owner[node.output] = root
            members[root] += members.pop(node.output)
            live[root] = live[root].union(live.pop(node.output))
            aliases[node.output] = Alias(node.output, source, node.name, rule.reason, rule.in_place)
            break
    buffers = [
        Buffer(root, tuple(names), max(graph.tensors[n].nbytes for n in names), live[root])
        for root, names in members.items()
    ]
    return aliases, buffers


def _fits(graph: Graph, output: str, source: str) -> bool:
    out, src = graph.tensors[output], graph.tensors[source]
    return out.dtype == src.dtype and out.nbytes <= src.nbytes


def _dies_at(graph: Graph, step: int, live: LiveRange, names: list[str]) -> bool:
    return live.last == step and not any(name in graph.outputs for name in names)
