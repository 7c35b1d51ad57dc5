"""The plan the code generator prints: every step's kernel variant, buffers and scratch, decided once.

``build_plan`` lowers each node once (its ``LayerCall``, with the kernel variant ``KernelChoice`` gave
it), records the arena bytes each step reads and writes, and places the kernels' scratch
(``memory.scratch_placement``); the result is checked by ``verify_plan``. ``program.emit_program``
then only prints it, and the build folder keeps it as ``plan.json`` (``Plan.to_json``).

Every scratch lives in the arena: model.c binds the name ``ek_scratch`` that a kernel call uses to
its step's address for that one statement. A patched schedule's stage is one step of its arena plan
(step 0, with the frame, the split tensor and the working block live): its kernels share one scratch
placed there, bound around the whole patch loop. Their buffers are patch regions of the working block,
which the arena plan does not list call by call, so a patch step records its patch and output region
instead.
"""

from dataclasses import dataclass

from edgekit.codegen.layer_calls import LayerCall, layer_call, overwrites_input
from edgekit.memory.plan_check import verify_plan, verify_scratch
from edgekit.memory.scratch_placement import place_scratch


@dataclass(frozen=True)
class BufferUse:
    """Arena bytes [offset, offset + size) holding ``tensor``, which the step reads or writes (``role``)."""

    role: str
    tensor: str
    offset: int
    size: int


@dataclass
class PlanStep:
    """One step of the schedule: the call printed for it and where its data lives."""

    call: LayerCall
    stage: str  # "layer" (whole tensors) or "patch" (a patch region, see codegen/patch_program.py)
    buffers: tuple[BufferUse, ...] = ()
    scratch_offset: int | None = None  # arena offset of its scratch (None: it needs none)
    patch: tuple[int, int] | None = None  # a patch-stage step: the patch it runs on
    region: object | None = None  # ... and the output region it writes (a ``patch_window.Region``)

    @property
    def variant(self) -> str | None:
        return self.call.kernel.variant if self.call.kernel is not None else None

    def to_json(self) -> dict:
        kernel = self.call.kernel
        scratch = None
        if self.call.scratch_bytes:
            scratch = {"bytes": self.call.scratch_bytes, "offset": self.scratch_offset}
        return {"node": self.call.node, "op": self.call.op, "stage": self.stage,
                "kernel": kernel.name if kernel is not None else None, "variant": self.variant,
                "buffers": [vars(b) for b in self.buffers], "scratch": scratch,
                "patch": self.patch, "output_region": vars(self.region) if self.region is not None else None}


@dataclass
class Plan:
    """The whole schedule as the code generator prints it. ``memory`` is the arena plan with the
    steps' scratch placed in it; ``loop`` the emitted patch stage (None layer by layer)."""

    memory: object
    steps: list[PlanStep]
    loop: object | None = None

    @property
    def scratch_bytes(self) -> int:
        """The largest scratch of one step (of the patch stage: of all its kernels)."""
        return max((s.size for s in self.memory.scratch), default=0)

    @property
    def stage_scratch_offset(self) -> int | None:
        """Where the patch stage's kernels' shared scratch lies (None: no stage, or no scratch)."""
        return next((s.scratch_offset for s in self.steps if s.stage == "patch" and s.scratch_offset is not None),
                    None)

    def to_json(self) -> dict:
        return {"arena_bytes": self.memory.arena_bytes, "alignment": self.memory.alignment,
                "scratch_bytes": self.scratch_bytes, "steps": [s.to_json() for s in self.steps]}


def _buffers(graph, memory, node) -> tuple[BufferUse, ...]:
    uses = [("input", name) for name in node.inputs if name in memory.tensors] + [("output", node.output)]
    return tuple(BufferUse(role, name, memory.offset(name), graph.tensors[name].nbytes) for role, name in uses)


def build_plan(graph, memory, choice, prefixes: dict[str, str], patches=None) -> Plan:
    """The checked plan of ``graph`` under the arena plan ``memory`` (``patches``' ``memory.arena``
    for a patched schedule); ``choice`` (a ``KernelChoice``) picks each step's kernel variant."""
    steps, loop = [], None
    if patches is not None:
        from edgekit.codegen.patch_program import emit_patch_loop

        loop = emit_patch_loop(patches, prefixes, choice)
        steps = [PlanStep(call, "patch", patch=index, region=region)
                 for call, (index, region) in zip(loop.calls, loop.places)]
    first = len(patches.stage.nodes) if patches is not None else 0

    def pointer(tensor_name: str) -> str:
        return f"(ek_arena + {memory.offset(tensor_name)})"

    layers = [PlanStep(layer_call(node, graph, prefixes[node.name], pointer, choice,
                                  in_place=overwrites_input(memory, node.output)), "layer", _buffers(graph, memory, node))
              for node in graph.nodes[first:]]
    arena_step = {usage.node: usage.step for usage in memory.steps}  # a patched arena: the stage is step 0
    by_step = {arena_step[step.call.node]: [step] for step in layers if step.call.scratch_bytes}
    if any(step.call.scratch_bytes for step in steps):
        by_step[0] = steps
    memory = place_scratch(memory, {at: (group[0].call.node if len(group) == 1 else memory.steps[at].node,
                                         max(step.call.scratch_bytes for step in group))
                                    for at, group in by_step.items()})
    for placed in memory.scratch:
        for step in by_step[placed.step]:
            step.scratch_offset = placed.offset
    if patches is None:
        verify_plan(memory, graph)
    else:  # its tensor placements are the patch search's, checked there with the schedule's own graph
        verify_scratch(memory)
    return Plan(memory, steps + layers, loop)
