"""Description: which tensors share arena bytes: views and in-place ops.

A ``Buffer`` is a rigid group of tensors, each at a fixed offset from the group's start; the
allocators place groups, and two tensors of different groups only clash where they are live
together. A node's output joins the group of one of its inputs when its op's ``buffer_share`` rule
(``edgekit/ops/<op>.py``, which says why it is safe) allows it and the rule is on (its ``option``
keyword of ``share_buffers``/``plan_memory``). A rule is one of three kinds:

- a view (``in_place`` False: reshape): the output is the input's bytes under another shape, at the
  same offset; both may stay live.
- channel by channel (``in_place``, not ``streams``: depthwise with one output channel per input
  channel, ``inplace_depthwise``): the output starts at its input's offset and is no larger; the
  code generator runs the op channel by channel through scratch planes (``inplace_scratch_bytes``).
- streaming (``in_place`` and ``streams``: add, ``inplace_add``; a row-wise conv2d, ``inplace_rows``):
  the op runs as a sequence of kernel calls whose reads and writes are known (``accesses``: one
  elementwise call for an add, ``stream_pixels`` output pixels per call for a 1x1 convolution, see
  ``codegen.layer_calls.streamed_call``), so the output may start ``stream_shift`` bytes below the
  input and overwrite input bytes that no later call reads (``streaming.py``). An add shifts by 0;
  a shrinking 1x1 convolution by one call's output; a widening one so far that its input sits in its
  output's tail.

An input "dies here" when no tensor of its group is read later and none is a graph output. A chain
of shifted writes drifts the group (each output lies below its input), so a streaming alias is only
taken while the group's span stays within the two tensors' separate sizes. The plan checker
(``plan_check.py``) proves every in-place write again from the placements and the same
``accesses``, so a wrong rule or a wrong shift fails the plan, not the firmware.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from edgekit.ir import Graph, Node
from edgekit.memory.live_range import LiveRange
from edgekit.memory.streaming import Access, RowCalls, sequence_shift
from edgekit.ops import OPS
from edgekit.ops.base import BufferShare

VIEW, STREAMING, CHANNELWISE = "view", "streaming", "channelwise"

#: (node, source tensor) -> one call sequence per run of the node (a stage node of a patch graph
#: runs once per patch); each sequence is the node's kernel calls in order (a list of ``Access``, or
#: a ``RowCalls`` loop)
AccessMap = Callable[[Node, str], list]


@dataclass(frozen=True)
class Alias:
    """``tensor`` (output of ``node``) reuses the bytes of ``source`` (one of its inputs).

    ``in_place`` is True when the node overwrites ``source`` (which dies there), False for a
    read-only view (reshape), where both tensors may stay live together. ``shift`` is where the
    output starts relative to the source (bytes, <= 0; 0 for views and channel-wise writes).
    """

    tensor: str
    source: str
    node: str
    reason: str
    in_place: bool
    shift: int = 0
    kind: str = VIEW


@dataclass(frozen=True)
class Buffer:
    """Tensors placed as one rigid group; ``name`` is the first of them (the one that owns it).

    ``offsets`` gives each tensor's offset from the group's start (all 0 unless a streaming alias
    shifted one), ``sizes`` and ``ranges`` each tensor's bytes and steps; ``size`` is the group's
    span and ``live`` the union of its tensors' live ranges."""

    name: str
    tensors: tuple[str, ...]
    size: int
    live: LiveRange
    offsets: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, LiveRange] = field(default_factory=dict)

    def members(self) -> list[tuple[int, int, LiveRange]]:
        """(offset in the group, bytes, live range) of every tensor; one item for a plain buffer."""
        if not self.sizes:
            return [(0, self.size, self.live)]
        return [(self.offsets.get(name, 0), self.sizes[name], self.ranges[name]) for name in self.tensors]

    def bytes_at(self, step: int) -> int:
        """Bytes of the group live at ``step``: the span of its tensors live then."""
        spans = [(offset, offset + size) for offset, size, live in self.members() if step in live]
        return max(end for _, end in spans) - min(start for start, _ in spans) if spans else 0


def rule_kind(rule: BufferShare) -> str:
    """VIEW, STREAMING or CHANNELWISE (see the module doc)."""
    return STREAMING if rule.in_place and rule.streams else CHANNELWISE if rule.in_place else VIEW


def buffer_rule(graph: Graph, node: Node, extra_rules: dict[str, BufferShare] | None = None) -> BufferShare | None:
    """The in-place or view rule of ``node``: its op's ``buffer_share`` (a streaming rule only when the
    op runs the node elementwise or row by row), or one of ``extra_rules`` for the planner's own steps."""
    if extra_rules and node.op in extra_rules:
        return extra_rules[node.op]
    op = OPS.get(node.op)  # None for the planner's own steps (patch_stage, patch_crop): they share nothing
    rule = op.buffer_share if op is not None else None
    if rule is not None and rule.in_place and rule.streams and not rule.elementwise and not op.row_wise(node, graph):
        return None
    return rule


def scratch_bytes(graph: Graph, aliases: dict[str, Alias]) -> int:
    """The scratch the in-place writes of a plan need outside the arena (the largest of them): the
    channel planes of channel-by-channel ops (``OpDef.inplace_scratch_bytes``)."""
    nodes = {node.name: node for node in graph.nodes}
    return max((OPS[nodes[a.node].op].inplace_scratch_bytes(graph.tensors[a.source].shape, graph.tensors[a.tensor].shape)
                for a in aliases.values() if a.kind == CHANNELWISE), default=0)


def elementwise_call(node: Node) -> bool:
    """Whether ``node``'s op runs as elementwise calls (its in-place rule's ``elementwise``)."""
    op = OPS.get(node.op)  # None for the planner's own steps
    return op is not None and op.buffer_share is not None and op.buffer_share.elementwise


def layer_accesses(graph: Graph) -> AccessMap:
    """The kernel calls of a node run layer by layer: an elementwise op (add, mul, a table lookup) is
    one elementwise call over the whole tensor; a row-wise conv2d with an in-place output runs its
    op's ``stream_pixels`` per call."""

    def accesses(node: Node, source: str) -> list:
        x, y = graph.tensors[source], graph.tensors[node.output]
        if elementwise_call(node):
            return [[Access((0, x.nbytes), (0, y.nbytes), elementwise=True)]]
        _, height, width, in_channels = x.shape
        pixels = OPS[node.op].stream_pixels(node, graph)
        read, write = pixels * in_channels, pixels * y.shape[3]
        return [RowCalls(height * width // pixels, 0, read, read, write, write)]

    return accesses


def stream_shift(accesses: AccessMap, node: Node, source: str, alignment: int) -> int:
    """The largest aligned shift at which ``node`` may write its output over ``source``."""
    shift = min(sequence_shift(calls) for calls in accesses(node, source))
    return (shift // alignment) * alignment


def share_buffers(graph: Graph, ranges: dict[str, LiveRange], *, inplace_add: bool = True,
                  inplace_depthwise: bool = False, inplace_rows: bool = False, alignment: int = 1,
                  accesses: AccessMap | None = None,
                  extra_rules: dict[str, BufferShare] | None = None) -> tuple[dict[str, Alias], list[Buffer]]:
    """The aliases chosen (by aliased tensor) and the groups they form (every tensor of ``ranges``).
    ``accesses`` describes streaming nodes' calls (default: ``layer_accesses``); ``extra_rules``
    adds rules for pseudo-ops of a schedule (the patch stage).

    Views and channel-wise writes cost nothing and are taken first, in schedule order. Streaming
    writes are then taken busiest step first (the bytes live there without sharing), then by the
    bytes they save (the two tensors' sizes minus the span of the pair): in a chain of in-place
    writes each fixes the next one's position, so the writes at the steps that make the peak choose
    first, and a write elsewhere that would drift the group too far is left out."""
    enabled = {None: True, "inplace_add": inplace_add, "inplace_depthwise": inplace_depthwise,
               "inplace_rows": inplace_rows}
    accesses = accesses or layer_accesses(graph)
    groups = _Groups(graph, ranges)
    busy = _busy_bytes(groups.sizes, ranges, len(graph.nodes))
    aliases = {}
    streaming = []
    for step, node in enumerate(graph.nodes):
        rule = buffer_rule(graph, node, extra_rules)
        if rule is None or not enabled[rule.option]:
            continue
        kind = rule_kind(rule)
        for position in rule.sources(node):
            source = node.inputs[position]
            x, y = graph.tensors[source], graph.tensors[node.output]
            if source not in ranges or y.dtype != x.dtype or (rule.elementwise and x.shape != y.shape):
                continue  # an elementwise op overwrites only an operand of its output's shape
            if kind == STREAMING:
                shift = stream_shift(accesses, node, source, alignment)
                streaming.append((-busy[step], -groups.saving(source, node.output, shift), step, position, node, rule,
                                  shift))
            elif node.output not in aliases and groups.may_join(step, node, source, kind):
                groups.join(source, node.output, 0)
                aliases[node.output] = Alias(node.output, source, node.name, rule.reason, kind != VIEW, 0, kind)
    for _, _, step, position, node, rule, shift in sorted(streaming, key=lambda item: item[:4]):
        source = node.inputs[position]
        if node.output in aliases or not groups.may_join(step, node, source, STREAMING):
            continue
        if groups.span_joined(source, node.output, shift) > (graph.tensors[source].nbytes
                                                               + graph.tensors[node.output].nbytes):
            continue  # a chain of shifts drifted: the rigid group would outgrow two separate buffers
        groups.join(source, node.output, shift)
        aliases[node.output] = Alias(node.output, source, node.name, rule.reason, True, shift, STREAMING)
    return aliases, groups.buffers()


def _busy_bytes(sizes: dict[str, int], ranges: dict[str, LiveRange], steps: int) -> list[int]:
    """Per step, the bytes of the tensors live then, without any sharing. A graph output lives to the
    end (a step past the last node in a graph of no nodes: a patch stage of one row-wise node)."""
    change = [0] * (steps + 2)
    for name, live in ranges.items():
        change[live.first] += sizes[name]
        change[live.last + 1] -= sizes[name]
    busy, total = [], 0
    for step in range(steps):
        total += change[step]
        busy.append(total)
    return busy


class _Groups:
    """Tensors grouped by shared bytes: each group's members and each tensor's offset in its group."""

    def __init__(self, graph: Graph, ranges: dict[str, LiveRange]):
        self.graph, self.ranges = graph, ranges
        self.owner = {name: name for name in ranges}
        self.members = {name: [name] for name in ranges}
        self.offsets = {name: 0 for name in ranges}
        self.sizes = {name: graph.tensors[name].nbytes for name in ranges}

    def may_join(self, step: int, node: Node, source: str, kind: str) -> bool:
        """Whether ``node``'s output may take ``source``'s bytes: a view always; an in-place write
        when every tensor of the source's group dies at this step, none is a graph output, the node
        reads no other tensor of the group, and a channel-wise write keeps behind its reads (its op's
        ``channelwise_overwrite_ok``)."""
        if kind == VIEW:
            return True
        names = self.members[self.owner[source]]
        if max(self.ranges[n].last for n in names) != step or any(n in self.graph.outputs for n in names):
            return False
        if any(self.owner.get(other) == self.owner[source] for other in node.inputs if other != source):
            return False  # the node reads another tensor of the group: it might read it after writing
        return kind != CHANNELWISE or OPS[node.op].channelwise_overwrite_ok(
            node, self.graph, self.graph.tensors[source].shape, self.graph.tensors[node.output].shape)

    def saving(self, source: str, tensor: str, shift: int) -> int:
        """Bytes saved by writing ``tensor`` at ``shift`` from ``source`` instead of apart from it."""
        span = max(self.sizes[source], shift + self.sizes[tensor]) - min(0, shift)
        return self.sizes[source] + self.sizes[tensor] - span

    def _moved(self, source: str, tensor: str, shift: int) -> dict[str, int]:
        """Offsets of the merged group, ``tensor``'s group moved to ``shift`` from ``source``."""
        delta = self.offsets[source] + shift - self.offsets[tensor]
        moved = {n: self.offsets[n] for n in self.members[self.owner[source]]}
        moved.update({n: self.offsets[n] + delta for n in self.members[self.owner[tensor]]})
        return moved

    def span_joined(self, source: str, tensor: str, shift: int) -> int:
        moved = self._moved(source, tensor, shift)
        return max(moved[n] + self.sizes[n] for n in moved) - min(moved.values())

    def join(self, source: str, tensor: str, shift: int) -> None:
        """Merge ``tensor``'s group into ``source``'s, ``tensor`` at ``shift`` from ``source``; the
        merged group's lowest tensor starts at 0."""
        moved = self._moved(source, tensor, shift)
        low = min(moved.values())
        root, other = self.owner[source], self.owner[tensor]
        for name in self.members[other]:
            self.owner[name] = root
        self.members[root] += self.members.pop(other)
        self.offsets.update({n: offset - low for n, offset in moved.items()})

    def buffers(self) -> list[Buffer]:
        buffers = []
        for root, names in self.members.items():
            live = self.ranges[names[0]]
            for name in names[1:]:
                live = live.union(self.ranges[name])
            span = max(self.offsets[n] + self.sizes[n] for n in names)
            buffers.append(Buffer(names[0], tuple(names), span, live, {n: self.offsets[n] for n in names},
                                  {n: self.sizes[n] for n in names}, {n: self.ranges[n] for n in names}))
        return buffers
