"""Description: the SRAM of a patched schedule: the patch stage, then the layer-by-layer rest.

The patch stage keeps two buffers for its whole duration: the input frame, and the split tensor,
which is assembled tile by tile. With ``input_by_patch`` the application hands the input over one
patch region at a time (a camera callback), so there is no frame buffer. On top of these come the
working buffers of one patch: each stage tensor other than the split tensor (and the frame) at the
size of its largest region over all patches. With input by patch, the input region is one of them.

Two plans, both made and checked by ``plan_memory``:

1. ``working``: one static layout that serves every patch. It plans the "patch graph": the stage's
   nodes on those region-sized tensors, minus the last node, which writes straight into its tile
   of the split tensor. That node's inputs are the patch graph's outputs, so they stay live to its
   end and the last node's step is covered. Live ranges inside a patch, buffer sharing (in-place
   depthwise and add) and the allocators work as they do layer by layer.
2. ``arena``: the whole schedule as one graph. Step 0 is the stage, a single node that reads the
   frame and writes the split tensor and a block of ``working.arena_bytes``. The rest of the graph
   follows, layer by layer. The split tensor therefore has one offset for both phases, and the
   frame and the working block reuse the rest's bytes.

``peak_bytes`` is the arena's size, the activation SRAM of the patched schedule. It is at least the
stage's bytes (frame + split + working) and the rest's largest step.
"""

from dataclasses import dataclass

from edgekit.ir import Graph, Node, Tensor
from edgekit.memory.patch_stage import PatchStage, activation_inputs, stage_nodes
from edgekit.memory.plan import MemoryPlan, plan_memory


@dataclass(frozen=True)
class PatchStep:
    """One step of the patched schedule. ``phase`` is "patch" (one step per stage node, the same
    on every patch) or "layer" (the rest). ``live_bytes`` counts the buffers live at the step,
    whose tensors are ``tensors``."""

    phase: str
    node: str
    live_bytes: int
    tensors: tuple[str, ...]


@dataclass
class PatchMemory:
    """The memory of running a stage patch by patch and the rest layer by layer.

    ``arena`` places the frame (unless input by patch), the split tensor, the block named
    ``working_block`` that holds ``working``'s buffers (offsets relative to the block), and every
    tensor of the rest.
    """

    split: str
    input_by_patch: bool
    working: MemoryPlan
    arena: MemoryPlan
    working_block: str | None
    steps: list[PatchStep]

    @property
    def peak_bytes(self) -> int:
        """Activation SRAM of the whole patched schedule."""
        return self.arena.arena_bytes

    @property
    def stage_bytes(self) -> int:
        """Bytes live during the stage: frame, split tensor and the working block."""
        return self.arena.steps[0].live_bytes

    @property
    def rest_bytes(self) -> int:
        """The largest bytes live at one layer-by-layer step (a lower bound for that phase)."""
        return max((usage.live_bytes for usage in self.arena.steps[1:]), default=0)

    @property
    def peak_step(self) -> PatchStep:
        """The step with the most live bytes (the tensors that make the peak)."""
        return max(self.steps, key=lambda step: step.live_bytes)


def patch_graph(stage: PatchStage, input_by_patch: bool) -> Graph:
    """The stage minus its last node on one patch, every activation at its largest region (weights
    as they are). The input is a tensor here only when it comes by patch (else the frame lives
    outside this plan); the last node's activation inputs are the outputs (they must survive until
    it has run)."""
    graph = stage.graph
    tensors = {}
    for name in stage.tensors[0 if input_by_patch else 1:-1]:
        region = stage.largest_region(name)
        source = graph.tensors[name]
        tensors[name] = Tensor(name, (1, region.height, region.width, source.shape[3]), source.dtype)
    for node in stage.nodes[:-1]:
        tensors.update((name, graph.tensors[name]) for name in node.inputs if graph.tensors[name].is_constant)
    inputs = [stage.input] if input_by_patch else []
    outputs = [name for name in activation_inputs(graph, stage.nodes[-1]) if name in tensors]
    return Graph(f"{graph.name}_patch", tensors, list(stage.nodes[:-1]), inputs, outputs)


def schedule_graph(graph: Graph, split: str, working_bytes: int,
                   input_by_patch: bool) -> tuple[Graph, str | None]:
    """``graph`` with its stage replaced by one node (op "patch_stage", which only the planner reads)
    that reads the frame and writes the split tensor plus a working block of ``working_bytes``;
    returns the graph and the block's name (None when the stage needs no working bytes)."""
    stage = stage_nodes(graph, split)
    block = graph.unique_name("patch_working") if working_bytes else None
    frame = [] if input_by_patch else list(graph.inputs)
    tensors = dict(graph.tensors)
    if block is not None:
        tensors[block] = Tensor(block, (working_bytes,), "int8")
    outputs = [split] if block is None else [split, block]
    node = Node(graph.unique_name("patch_stage"), "patch_stage", frame, outputs)
    schedule = Graph(f"{graph.name}_patched", tensors, [node] + graph.nodes[len(stage):], frame,
                     list(graph.outputs))
    schedule.remove_unused_tensors()
    return schedule, block


def plan_patch_memory(stage: PatchStage, input_by_patch: bool = False, alignment: int = 16,
                      inplace_depthwise: bool = True) -> PatchMemory:
    """Plan one patch's working buffers and the arena of the whole schedule (see the module doc)."""
    graph = stage.graph
    working = plan_memory(patch_graph(stage, input_by_patch), alignment, inplace_depthwise=inplace_depthwise)
    schedule, block = schedule_graph(graph, stage.split, working.arena_bytes, input_by_patch)
    arena = plan_memory(schedule, alignment, inplace_depthwise=inplace_depthwise)
    memory = PatchMemory(stage.split, input_by_patch, working, arena, block, [])
    memory.steps.extend(_stage_steps(stage, memory))
    memory.steps.extend(PatchStep("layer", usage.node, usage.live_bytes, usage.tensors)
                        for usage in arena.steps[1:])
    return memory


def _stage_steps(stage: PatchStage, memory: PatchMemory) -> list[PatchStep]:
    """Per stage node: the working buffers live then, plus the frame and the split tensor."""
    frame_and_split = tuple(name for name in memory.arena.steps[0].tensors if name != memory.working_block)
    fixed = sum(memory.arena.tensors[name].size for name in frame_and_split)
    steps = [PatchStep("patch", usage.node, fixed + usage.live_bytes, frame_and_split + usage.tensors)
             for usage in memory.working.steps]
    last = stage.nodes[-1]
    inputs = tuple(name for name in activation_inputs(stage.graph, last) if name in memory.working.tensors)
    live = sum(memory.working.tensors[name].size for name in inputs)
    steps.append(PatchStep("patch", last.name, fixed + live, frame_and_split + inputs))
    return steps
