"""The plan the code generator prints: every step's kernel variant, buffers and scratch, decided once.

``build_plan`` lowers each node once (its ``LayerCall``, with the kernel variant ``KernelChoice`` gave
it), records the arena bytes each step reads and writes, and places the kernels' scratch
(``memory.scratch_placement``); the result is checked by ``verify_plan``. ``program.emit_program``
then only prints it, and the build folder keeps it as ``plan.json`` (``Plan.to_json``).

Layer by layer, every scratch lives in the arena at the step's own offset: model.c binds the name
``ek_scratch`` the kernel call uses to that address for the one statement. A patched schedule's
steps work on patch regions of the working block, which its arena plan does not list step by step;
there every scratch stays in one static ``ek_scratch`` array outside the arena, sized for the largest.
"""

from dataclasses import dataclass

from edgekit.codegen.layer_calls import LayerCall, layer_call, overwrites_input
from edgekit.memory.plan_check import verify_plan
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
    scratch_offset: int | None = None  # arena offset of its scratch; None: static ek_scratch (or none)

    @property
    def variant(self) -> str | None:
        return self.call.kernel.variant if self.call.kernel is not None else None

    def to_json(self) -> dict:
        kernel = self.call.kernel
        scratch = None
        if self.call.scratch_bytes:
            scratch = {"bytes": self.call.scratch_bytes,
                       "where": "ek_scratch" if self.scratch_offset is None else "arena",
                       "offset": self.scratch_offset}
        return {"node": self.call.node, "op": self.call.op, "stage": self.stage,
                "kernel": kernel.name if kernel is not None else None, "variant": self.variant,
                "buffers": [vars(b) for b in self.buffers], "scratch": scratch}


@dataclass
class Plan:
    """The whole schedule as the code generator prints it. ``memory`` is the arena plan with the
    steps' scratch placed in it; ``loop`` the emitted patch stage (None layer by layer)."""

    memory: object
    steps: list[PlanStep]
    loop: object | None = None

    @property
    def static_scratch_bytes(self) -> int:
        """Bytes of the static ``ek_scratch`` array (scratch of steps outside the arena)."""
        return max((s.call.scratch_bytes for s in self.steps if s.scratch_offset is None), default=0)

    @property
    def arena_scratch_bytes(self) -> int:
        """The largest scratch of one step inside the arena."""
        return max((s.size for s in self.memory.scratch), default=0)

    def to_json(self) -> dict:
        return {"arena_bytes": self.memory.arena_bytes, "alignment": self.memory.alignment,
                "static_scratch_bytes": self.static_scratch_bytes, "steps": [s.to_json() for s in self.steps]}


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
        steps = [PlanStep(call, "patch") for call in loop.calls]
    first = len(patches.stage.nodes) if patches is not None else 0

    def pointer(tensor_name: str) -> str:
        return f"(ek_arena + {memory.offset(tensor_name)})"

    layers = {index: PlanStep(layer_call(node, graph, prefixes[node.name], pointer, choice,
                                         in_place=overwrites_input(memory, node.output)),
                              "layer", _buffers(graph, memory, node))
              for index, node in enumerate(graph.nodes) if index >= first}
    if patches is None:  # the arena plan lists every step's live tensors: scratch goes in the arena
        memory = place_scratch(memory, {index: (step.call.node, step.call.scratch_bytes)
                                        for index, step in layers.items() if step.call.scratch_bytes})
        for placed in memory.scratch:
            layers[placed.step].scratch_offset = placed.offset
        verify_plan(memory, graph)  # a patched arena plan is unchanged: the patch search checked it
    return Plan(memory, steps + list(layers.values()), loop)
