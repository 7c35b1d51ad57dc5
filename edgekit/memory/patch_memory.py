"""Description: the SRAM of a patched schedule: the patch stage, then the layer-by-layer rest.

The patch stage keeps two buffers for its whole duration: the input frame, and the split tensor,
which is assembled tile by tile. With ``input_by_patch`` the application hands the input over one
patch region at a time (a camera callback), so there is no frame buffer. On top of these come the
working buffers of one patch, each at the size of its largest region over all patches: every
stage tensor other than the split tensor, the input region included (copied out of the frame, or
filled by the callback), plus the copies the firmware's kernels need because they read and write
whole contiguous buffers of a static shape (``row_wise`` nodes, see ``OpDef.row_wise``, are the exception):

- a crop: a node whose input window is smaller than the region its input holds (the expand conv
  and the residual add of a block read different windows of the block input) reads a compact copy
  of its window;
- a tile: unless the stage's last node is ``row_wise``, it writes a compact tile that the firmware
  then copies row by row into the split tensor. A row-wise last node writes the split rows itself.

Two plans, both made and checked by ``plan_memory``:

1. ``working``: one static layout that serves every patch. It plans the "patch graph": the stage's
   nodes on those region-sized tensors, with the crops as nodes of their own (op "patch_crop") and
   the last node only when it writes a tile. Otherwise that node's inputs are the patch graph's
   outputs, so they stay live to its end and the last node's step is covered. Live ranges inside a
   patch, buffer sharing (in-place depthwise and add) and the allocators work as they do layer by
   layer.
2. ``arena``: the whole schedule as one graph. Step 0 is the stage, a single node that reads the
   frame and writes the split tensor and a block of ``working.arena_bytes``. The rest of the graph
   follows, layer by layer. The split tensor therefore has one offset for both phases, and the
   frame and the working block reuse the rest's bytes.

``peak_bytes`` is the arena's size, the activation SRAM of the patched schedule. It is at least the
stage's bytes (frame + split + working) and the rest's largest step.
"""

from dataclasses import dataclass, field, replace

from edgekit.ir import Graph, Node, Tensor
from edgekit.memory.buffer_sharing import AccessMap, elementwise_call, layer_accesses
from edgekit.memory.patch_stage import PatchStage, activation_inputs, stage_nodes
from edgekit.memory.patch_window import Region
from edgekit.memory.plan import MemoryPlan, plan_memory
from edgekit.memory.streaming import Access, RowCalls
from edgekit.ops import get_op
from edgekit.ops.base import BufferShare

CROP_OP = "patch_crop"
STAGE_OP = "patch_stage"
#: the split tensor may take frame bytes that no later patch reads (the frame as working memory): the
#: stage reads the frame and writes the split tensor patch by patch (``frame_accesses``)
STAGE_RULE = BufferShare("split tensor over dead frame rows", True, lambda node: (0,) if node.inputs else (),
                         streams=True)


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
    #: (node name, input tensor) -> the working tensor holding the compact copy of its window
    crops: dict[tuple[str, str], str] = field(default_factory=dict)
    #: the working tensor the last node writes before its copy into the split tensor, or None
    tile: str | None = None

    @property
    def peak_bytes(self) -> int:
        """Activation SRAM of the whole patched schedule."""
        return self.arena.arena_bytes

    @property
    def scratch_bytes(self) -> int:
        """Scratch outside the arena (in-place depthwise planes) of either phase."""
        return max(self.working.scratch_bytes, self.arena.scratch_bytes)

    @property
    def sram_bytes(self) -> int:
        """Arena + scratch: what the search minimises."""
        return self.peak_bytes + self.scratch_bytes

    @property
    def frame_reuse_bytes(self) -> int:
        """Bytes of the split tensor that lie in the frame (rows no later patch reads)."""
        if self.input_by_patch or self.split not in self.arena.aliases:
            return 0
        frame, split = self.arena.tensors[self.arena.aliases[self.split].source], self.arena.tensors[self.split]
        return max(0, min(frame.end, split.end) - max(frame.offset, split.offset))

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


def row_wise(graph: Graph, node: Node) -> bool:
    """Whether the firmware runs ``node`` one output row at a time (its op's ``row_wise``), so that it
    reads and writes rows of bigger buffers in place."""
    return get_op(node.op, node).row_wise(node, graph)


def crop_windows(stage: PatchStage) -> dict[tuple[str, str], Region]:
    """(node, input tensor) -> the largest window (by area) for each read that needs a compact copy:
    a node that is not ``row_wise`` reading, on some patch, less than the region its input holds."""
    graph = stage.graph
    crops = {}
    for node in stage.nodes:
        if row_wise(graph, node):
            continue
        for name in activation_inputs(graph, node):
            windows = [patch.windows[node.name].input for patch in stage.patches
                       if not patch.windows[node.name].output.is_empty]
            if any(window != patch.regions[name] for window, patch in zip(windows, stage.patches)):
                crops[(node.name, name)] = max(windows, key=lambda region: region.area)
    return crops


def _region_tensor(graph: Graph, name: str, source: str, region: Region) -> Tensor:
    return Tensor(name, (1, region.height, region.width, graph.tensors[source].shape[3]), graph.tensors[source].dtype)


def patch_graph(stage: PatchStage) -> tuple[Graph, dict[tuple[str, str], str], str | None, dict[str, str]]:
    """The stage on one patch, every activation at its largest region (weights as they are), with
    the crops and the tile of the module doc. Returns the graph, the crop tensors by (node, input),
    the tile tensor (or None) and, for every crop node, the node it serves."""
    graph = stage.graph
    last = stage.nodes[-1]
    tensors = {name: _region_tensor(graph, name, name, stage.largest_region(name)) for name in stage.tensors[:-1]}
    tile = None if row_wise(graph, last) else f"{stage.split}@tile"
    if tile is not None:
        tensors[tile] = _region_tensor(graph, tile, stage.split, stage.largest_region(stage.split))
    crops, served, nodes = {}, {}, []
    windows = crop_windows(stage)
    for node in stage.nodes if tile is not None else stage.nodes[:-1]:
        inputs = list(node.inputs)
        for position, name in enumerate(node.inputs):
            if (node.name, name) in windows:
                crop = f"{name}@{node.name}"
                tensors[crop] = _region_tensor(graph, crop, name, windows[(node.name, name)])
                crop_node = Node(f"{node.name}@crop{position}", CROP_OP, [name], [crop])
                nodes.append(crop_node)
                crops[(node.name, name)] = inputs[position] = crop
                served[crop_node.name] = node.name
            elif graph.tensors[name].is_constant:
                tensors[name] = graph.tensors[name]
        outputs = [tile] if node is last else list(node.outputs)
        nodes.append(replace(node, inputs=inputs, outputs=outputs))
    if tile is not None:
        outputs = [tile]
    else:
        outputs = [crops.get((last.name, name), name) for name in activation_inputs(graph, last)]
    patch = Graph(f"{graph.name}_patch", tensors, nodes, [stage.input], outputs)
    return patch, crops, tile, served


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
    node = Node(graph.unique_name(STAGE_OP), STAGE_OP, frame, outputs)
    schedule = Graph(f"{graph.name}_patched", tensors, [node] + graph.nodes[len(stage):], frame,
                     list(graph.outputs))
    schedule.remove_unused_tensors()
    return schedule, block


def working_accesses(stage: PatchStage) -> AccessMap:
    """The calls of a row-wise stage node on every patch, as the firmware makes them
    (``codegen.layer_calls.row_loop_call``): call r reads row r of the node's window of its input's
    region and writes row r of its output's region, each region compact with its own row stride."""
    graph = stage.graph

    def accesses(node: Node, source: str) -> list[RowCalls]:
        in_channels, out_channels = graph.tensors[source].shape[3], graph.tensors[node.output].shape[3]
        sequences = []
        for patch in stage.patches:
            window = patch.windows[node.name]
            if window.output.is_empty:
                continue
            held, out = patch.regions[source], patch.regions[node.output]
            start = ((window.input.rows[0] - held.rows[0]) * held.width + window.input.cols[0] - held.cols[0])
            sequences.append(RowCalls(window.output.height, start * in_channels, held.width * in_channels,
                                      window.input.width * in_channels, out.width * out_channels,
                                      window.output.width * out_channels, elementwise=elementwise_call(node)))
        return sequences or [[]]

    return accesses


def frame_accesses(stage: PatchStage) -> AccessMap:
    """The patch stage as one call per patch, in the stage's order: it copies the patch's input
    region out of the frame (row-major, so it reads from the region's first byte to its last) and
    writes the patch's tile of the split tensor (likewise from its first byte to its last)."""
    graph = stage.graph
    frame, split = graph.tensors[stage.input], graph.tensors[stage.split]

    def span(region: Region, shape: tuple) -> tuple[int, int]:
        _, _, width, channels = shape
        if region.is_empty:
            return (int(frame.nbytes), int(frame.nbytes))  # reads nothing
        return ((region.rows[0] * width + region.cols[0]) * channels,
                ((region.rows[1] - 1) * width + region.cols[1]) * channels)

    def accesses(node: Node, source: str) -> list[list[Access]]:
        return [[Access(span(patch.regions[stage.input], frame.shape), span(patch.regions[stage.split], split.shape))
                 for patch in stage.patches]]

    return accesses


def plan_patch_memory(stage: PatchStage, input_by_patch: bool = False, alignment: int = 16,
                      inplace_depthwise: bool = True, inplace_rows: bool = True, frame_reuse: bool = True,
                      verify: bool = True) -> PatchMemory:
    """Plan one patch's working buffers and the arena of the whole schedule (see the module doc).
    ``inplace_rows``: row-wise nodes may write over their inputs (in the working block and in the
    rest); ``frame_reuse``: the split tensor may take frame bytes no later patch reads; ``verify``:
    check both plans (a search checks only the plan it keeps)."""
    graph = stage.graph
    patch, crops, tile, served = patch_graph(stage)
    working = plan_memory(patch, alignment, inplace_depthwise=inplace_depthwise, inplace_rows=inplace_rows,
                          accesses=working_accesses(stage), verify=verify)
    schedule, block = schedule_graph(graph, stage.split, working.arena_bytes, input_by_patch)
    layer = schedule_accesses(schedule, stage)
    arena = plan_memory(schedule, alignment, inplace_depthwise=inplace_depthwise, inplace_rows=inplace_rows,
                        accesses=layer, extra_rules={STAGE_OP: STAGE_RULE} if frame_reuse else None, verify=verify)
    memory = PatchMemory(stage.split, input_by_patch, working, arena, block, [], crops, tile)
    memory.steps.extend(_stage_steps(stage, memory, served))
    memory.steps.extend(PatchStep("layer", usage.node, usage.live_bytes, usage.tensors)
                        for usage in arena.steps[1:])
    return memory


def schedule_accesses(schedule: Graph, stage: PatchStage) -> AccessMap:
    """The calls of the schedule graph's nodes: the stage node per ``frame_accesses``, the rest as
    layer by layer (``buffer_sharing.layer_accesses``)."""
    stage_calls, layer_calls = frame_accesses(stage), layer_accesses(schedule)
    return lambda node, source: (stage_calls if node.op == STAGE_OP else layer_calls)(node, source)


def _stage_steps(stage: PatchStage, memory: PatchMemory, served: dict[str, str]) -> list[PatchStep]:
    """Per step of one patch (crops under the name of the node they serve): the working buffers
    live then, plus the frame and the split tensor."""
    frame_and_split = tuple(name for name in memory.arena.steps[0].tensors if name != memory.working_block)
    block = memory.arena.tensors[memory.working_block].size if memory.working_block else 0
    fixed = memory.arena.steps[0].live_bytes - block  # frame and split, overlapping where the split reuses the frame
    steps = [PatchStep("patch", served.get(usage.node, usage.node), fixed + usage.live_bytes,
                       frame_and_split + usage.tensors)
             for usage in memory.working.steps]
    if memory.tile is None:
        last = stage.nodes[-1]
        inputs = tuple(sorted(name for name in _last_inputs(stage, memory) if name in memory.working.tensors))
        live = sum(memory.working.tensors[name].size for name in inputs)
        steps.append(PatchStep("patch", last.name, fixed + live, frame_and_split + inputs))
    return steps


def _last_inputs(stage: PatchStage, memory: PatchMemory) -> set[str]:
    last = stage.nodes[-1]
    return {memory.crops.get((last.name, name), name) for name in activation_inputs(stage.graph, last)}
