"""Description: which tensors share one arena buffer: reshape views and in-place ops.

A ``Buffer`` is a group of tensors placed at the same offset; the allocators place buffers, not
tensors. A node's output joins the buffer of one of its inputs when a rule for its op allows it.
Rules are applied node by node in schedule order, so chains (reshape of an in-place add, ...) work:

- ``reshape``: the output is the input's bytes under another shape (row-major), a read-only view.
  It always shares; code generation emits no copy.
- ``add`` (``inplace_add``, default on): out[k] depends only on a[k] and b[k], and an elementwise
  kernel reads both before it writes out[k], so the output may overwrite an input that dies here.
- ``depthwise_conv2d`` (``inplace_depthwise``, default off): with one output channel per input
  channel, a kernel that works channel by channel (copy input channel c into a scratch plane, then
  write output channel c) overwrites only elements of input channel c, because output element
  (y, x, c) sits at (y * W_out + x) * C + c, which is an element of input channel c. The output may
  therefore start at the input's offset for any stride and padding, as long as it is no larger than
  the input. Off by default because the generic depthwise kernel reads neighbouring pixels of all
  channels after it has written some outputs; turn it on only with the channel-by-channel kernel.

An input "dies here" when no tensor of its buffer is read later and none is a graph output.
A shared buffer spans the union of its tensors' live ranges and the size of its largest tensor.
"""

from collections.abc import Callable
from dataclasses import dataclass

from edgekit.ir import Graph, Node
from edgekit.memory.live_range import LiveRange


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


@dataclass(frozen=True)
class _Rule:
    reason: str
    in_place: bool  # the output overwrites the input, which must die here (else: a read-only view)
    sources: Callable[[Node], tuple[int, ...]]  # input positions whose buffer the output may take


_RULES = {
    "reshape": _Rule("reshape view", False, lambda node: (0,)),
    "add": _Rule("in-place add", True, lambda node: (0, 1)),
    "depthwise_conv2d": _Rule("in-place depthwise", True,
                              lambda node: (0,) if node.attrs.depth_multiplier == 1 else ()),
}


def share_buffers(graph: Graph, ranges: dict[str, LiveRange], *, inplace_add: bool = True,
                  inplace_depthwise: bool = False) -> tuple[dict[str, Alias], list[Buffer]]:
    """The aliases chosen (by aliased tensor) and the buffers they form (every tensor of ``ranges``)."""
    enabled = {"reshape": True, "add": inplace_add, "depthwise_conv2d": inplace_depthwise}
    owner = {name: name for name in ranges}
    members = {name: [name] for name in ranges}
    live = dict(ranges)
    aliases = {}
    for step, node in enumerate(graph.nodes):
        rule = _RULES.get(node.op)
        if rule is None or not enabled[node.op]:
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
