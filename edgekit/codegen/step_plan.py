"""The plan the code generator prints: every step's kernel variant, buffer bytes and scratch, decided once.

A ``Plan`` is the schedule as a list of ``PlanStep``: one per (patch, node), plus the copies a patch
needs (its input window, crops, the tile into the split tensor). Layer by layer is the one-patch case:
a layer step runs on patch (0, 0), which covers its whole output. Every buffer a step reads or writes
is a ``BufferUse``: arena bytes, as rows of ``row_bytes`` at ``row_stride`` (one row for a whole tensor),
so a patch step names the bytes of its patch region, not a tensor. Each step's ``LayerCall`` is lowered
from those byte offsets (``arena_pointer``), so the C the code generator prints has no other source of
addresses; ``step_check.verify_steps`` replays the steps byte by byte, and the build folder keeps the
plan as ``plan.json`` (``Plan.to_json``; its format is in the README, "How it works").

Every scratch lives in the arena: model.c binds the name ``ek_scratch`` that a kernel call uses to its
step's address for that one statement. A patched schedule's stage is one step of its arena plan (step
0, with the frame, the split tensor and the working block live): its kernels share one scratch placed
there.
"""

from dataclasses import dataclass

from edgekit.codegen.layer_calls import LayerCall, layer_call, overwrites_input
from edgekit.memory.patch_window import Region
from edgekit.memory.plan_check import verify_plan, verify_scratch
from edgekit.memory.scratch_placement import place_scratch

#: where a buffer's placement comes from: the arena plan, or the patch stage's working plan (a buffer
#: rewritten on every patch, inside the working block)
ARENA, PATCH = "arena", "patch"


@dataclass(frozen=True)
class BufferUse:
    """The bytes of ``tensor`` that a step reads (``role`` "input") or writes ("output"): ``rows`` runs
    of ``row_bytes`` bytes, ``row_stride`` apart, from arena offset ``offset``. ``space`` says which
    plan places the tensor (``ARENA`` or ``PATCH``)."""

    role: str
    tensor: str
    offset: int
    row_bytes: int
    rows: int
    row_stride: int
    space: str

    @property
    def size(self) -> int:
        """Bytes from the first byte to the last (the gaps between rows included)."""
        return (self.rows - 1) * self.row_stride + self.row_bytes if self.rows > 0 else 0

    def to_json(self) -> dict:
        return {**vars(self), "size": self.size}


def whole_buffer(role: str, tensor: str, offset: int, size: int) -> BufferUse:
    """``size`` contiguous bytes of the arena from ``offset``: one row."""
    return BufferUse(role, tensor, offset, size, 1, size, ARENA)


def arena_pointer(use: BufferUse) -> str:
    """The C expression of the first byte of ``use``."""
    return f"(ek_arena + {use.offset})"


@dataclass
class PlanStep:
    """One step of the schedule: the call printed for it, the patch it runs on and the bytes it uses.

    ``stage`` is "patch" for a step of the patch loop and "layer" for the rest; ``region`` is the part
    of its output the step writes (of its input, for a patch's input window; None for a tensor that is
    not a feature map); ``mark`` whether ``ek_mark()`` follows it (the end of a node's steps)."""

    call: LayerCall
    stage: str
    patch: tuple[int, int] = (0, 0)
    region: Region | None = None
    buffers: tuple[BufferUse, ...] = ()
    scratch_offset: int | None = None  # arena offset of its scratch (None: it needs none)
    mark: bool = True

    @property
    def node(self) -> str:
        return self.call.node

    @property
    def variant(self) -> str | None:
        return self.call.kernel.variant if self.call.kernel is not None else None

    def to_json(self) -> dict:
        kernel = self.call.kernel
        scratch = None
        if self.call.scratch_bytes:
            scratch = {"bytes": self.call.scratch_bytes, "offset": self.scratch_offset}
        return {"node": self.call.node, "op": self.call.op, "stage": self.stage, "patch": list(self.patch),
                "kernel": kernel.name if kernel is not None else None, "variant": self.variant,
                "output_region": vars(self.region) if self.region is not None else None,
                "buffers": [b.to_json() for b in self.buffers], "scratch": scratch, "mark": self.mark}


@dataclass
class Plan:
    """The whole schedule as the code generator prints it. ``memory`` is the arena plan with the steps'
    scratch placed in it; a patched schedule's ``working`` plan places the stage's working buffers from
    arena offset ``working_offset`` (None layer by layer). ``inputs`` and ``outputs`` are the graph's."""

    memory: object
    steps: list[PlanStep]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    working: object | None = None
    working_offset: int = 0

    @property
    def scratch_bytes(self) -> int:
        """The largest scratch of one step (of the patch stage: of all its kernels)."""
        return max((s.size for s in self.memory.scratch), default=0)

    @property
    def patched(self) -> bool:
        return self.working is not None

    def to_json(self) -> dict:
        return {"arena_bytes": self.memory.arena_bytes, "alignment": self.memory.alignment,
                "scratch_bytes": self.scratch_bytes,
                "working_block": ({"offset": self.working_offset, "bytes": self.working.arena_bytes}
                                  if self.working is not None else None),
                "steps": [s.to_json() for s in self.steps]}


def whole_region(graph, tensor: str) -> Region | None:
    """All of a feature map (None for a tensor that is not NHWC)."""
    shape = graph.tensors[tensor].shape
    return Region((0, shape[1]), (0, shape[2])) if len(shape) == 4 else None


def layer_step(node, graph, memory, prefix: str, choice) -> PlanStep:
    """``node`` run layer by layer: one patch, its whole input and output tensors at their arena offsets."""
    names = [("input", name) for name in node.inputs if name in memory.tensors] + [("output", node.output)]
    buffers = tuple(whole_buffer(role, name, memory.offset(name), graph.tensors[name].nbytes) for role, name in names)
    by_tensor = {use.tensor: use for use in buffers}
    call = layer_call(node, graph, prefix, lambda name: arena_pointer(by_tensor[name]), choice,
                      in_place=overwrites_input(memory, node.output))
    return PlanStep(call, "layer", region=whole_region(graph, node.output), buffers=buffers)


def build_plan(graph, memory, choice, prefixes: dict[str, str], patches=None) -> Plan:
    """The checked plan of ``graph`` under the arena plan ``memory`` (``patches``' ``memory.arena``
    for a patched schedule); ``choice`` (a ``KernelChoice``) picks each step's kernel variant."""
    from edgekit.codegen.step_check import verify_steps

    stage_steps, working, working_offset = [], None, 0
    if patches is not None:
        from edgekit.codegen.patch_program import patch_steps

        stage_steps = patch_steps(patches, prefixes, choice)
        working = patches.memory.working
        if patches.memory.working_block:
            working_offset = memory.offset(patches.memory.working_block)
    first = len(patches.stage.nodes) if patches is not None else 0
    layers = [layer_step(node, graph, memory, prefixes[node.name], choice) for node in graph.nodes[first:]]
    arena_step = {usage.node: usage.step for usage in memory.steps}  # a patched arena: the stage is step 0
    by_step = {arena_step[step.node]: [step] for step in layers if step.call.scratch_bytes}
    if any(step.call.scratch_bytes for step in stage_steps):
        by_step[0] = stage_steps
    memory = place_scratch(memory, {at: (group[0].node if len(group) == 1 else memory.steps[at].node,
                                         max(step.call.scratch_bytes for step in group))
                                    for at, group in by_step.items()})
    for placed in memory.scratch:
        for step in by_step[placed.step]:
            if step.call.scratch_bytes:
                step.scratch_offset = placed.offset
    if patches is None:
        verify_plan(memory, graph)
    else:  # its tensor placements are the patch search's, checked there with the schedule's own graph
        verify_scratch(memory)
    plan = Plan(memory, stage_steps + layers, tuple(graph.inputs), tuple(graph.outputs), working, working_offset)
    verify_steps(plan)
    return plan
