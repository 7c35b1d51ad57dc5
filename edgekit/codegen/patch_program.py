"""The patch loop of model.c as plan steps: the stage of a patched schedule run patch by patch, unrolled.

For every patch (in the stage's order) and every stage node (schedule order) it makes the ``PlanStep``
of the kernel call that node runs on that patch (``step_plan.py``), which ends with ``ek_mark()``, so the
instruction counter sees one interval per (patch, node). Each step names the bytes of its patch regions
(``BufferUse``: offset, rows, row stride), and its call is lowered from those offsets.

Buffers follow ``PatchMemory`` (memory/patch_memory.py), which counts every one of them:

- every stage tensor lives compact (its patch region, row stride region width x C) in the working
  block; a patch starts by filling the input region, copied out of the frame or handed over by the
  application's ``ek_model_input_window()`` (input by patch);
- kernels take contiguous buffers of a static shape, so a node is specialised per distinct
  (input window shape, padding) with ``PatchStage.patch_node``, and TVM kernels are deduplicated by
  spec (equal interior patches share one function);
- a node that reads less than its input region holds reads a compact crop, copied first;
- ``row_wise`` nodes (add, 1x1 conv) instead run one output row per call, reading and writing rows
  of any buffer in place: a sub-window of a region, or the rows of the split tensor (and their
  kernels depend on the patch width only);
- the last node writes the split tensor's tile: row by row, or through the compact tile buffer.
"""

from dataclasses import dataclass

from edgekit.codegen.layer_calls import LayerCall, graph_view, layer_call, overwrites_input, row_loop_call
from edgekit.codegen.step_plan import ARENA, PATCH, BufferUse, PlanStep, arena_pointer
from edgekit.errors import UnsupportedOpError
from edgekit.memory.patch_memory import CROP_OP, row_wise
from edgekit.memory.patch_stage import activation_inputs
from edgekit.memory.patch_window import Region

#: the copy steps of a patch: its input window into the working block, and the last node's tile into
#: the split tensor (a crop is ``CROP_OP``)
INPUT_OP, TILE_OP = "patch_input", "patch_tile"


@dataclass(frozen=True)
class _Buffer:
    """A tensor's ``region`` stored compact (row stride region width x ``channels``) from arena byte
    ``offset``; ``space`` as in ``BufferUse``."""

    space: str
    tensor: str
    offset: int
    region: Region
    channels: int

    @property
    def row_stride(self) -> int:
        return self.region.width * self.channels

    def use(self, role: str, window: Region) -> BufferUse:
        """The bytes of ``window`` (inside ``region``)."""
        start = ((window.rows[0] - self.region.rows[0]) * self.region.width
                 + window.cols[0] - self.region.cols[0]) * self.channels
        return BufferUse(role, self.tensor, self.offset + start, window.width * self.channels, window.height,
                         self.row_stride, self.space)

    def is_compact(self, window: Region) -> bool:
        return window == self.region


def _copy_step(op: str, node, patch, source: BufferUse, destination: BufferUse, region: Region,
               mark: bool = False) -> PlanStep:
    """A step that copies ``source``'s rows into ``destination``'s (same rows and row bytes)."""
    body = (f"ek_copy_rows({arena_pointer(destination)}, {destination.row_stride}, {arena_pointer(source)}, "
            f"{source.row_stride}, {destination.rows}, {destination.row_bytes});")
    return PlanStep(LayerCall(node.name, op, None, body=body), "patch", patch.index, region, (source, destination),
                    mark=mark)


def _input_step(node, patch, destination: BufferUse, region: Region, frame: _Buffer | None) -> PlanStep:
    """A patch's input region into the working block: out of the frame, or from the application."""
    if frame is not None:
        return _copy_step(INPUT_OP, node, patch, frame.use("input", region), destination, region)
    body = (f"EK_CHECK(ek_model_input_window({region.rows[0]}, {region.cols[0]}, {region.height}, {region.width}, "
            f"{arena_pointer(destination)}));")
    return PlanStep(LayerCall(node.name, INPUT_OP, None, body=body), "patch", patch.index, region, (destination,),
                    mark=False)


def patch_steps(schedule, prefixes: dict[str, str], choice) -> list[PlanStep]:
    """The plan steps of ``schedule``'s stage (a ``PatchSchedule``); ``prefixes`` names each node's constants."""
    stage, memory = schedule.stage, schedule.memory
    graph = stage.graph
    arena = memory.arena
    block = arena.offset(memory.working_block) if memory.working_block else 0
    x = graph.tensors[stage.input]
    split = graph.tensors[stage.split]
    frame = None if memory.input_by_patch else _Buffer(
        ARENA, stage.input, arena.offset(stage.input), Region((0, x.shape[1]), (0, x.shape[2])), x.shape[3])
    split_buffer = _Buffer(ARENA, stage.split, arena.offset(stage.split),
                           Region((0, split.shape[1]), (0, split.shape[2])), split.shape[3])

    def working(name: str, region: Region, source: str) -> _Buffer:
        return _Buffer(PATCH, name, block + memory.working.offset(name), region, graph.tensors[source].shape[3])

    steps: list[PlanStep] = []
    last = stage.nodes[-1]
    for patch in stage.patches:
        held = {}
        region = patch.regions[stage.input]
        held[stage.input] = working(stage.input, region, stage.input)
        if not region.is_empty:
            steps.append(_input_step(stage.nodes[0], patch, held[stage.input].use("output", region), region, frame))
        for node in stage.nodes:
            window = patch.windows[node.name]
            if window.output.is_empty:
                steps.append(PlanStep(LayerCall(node.name, node.op, None,
                                                body=f"/* {node.name}: computes nothing on this patch */"),
                                      "patch", patch.index, window.output))
                continue
            if window.input.is_empty:
                raise UnsupportedOpError(
                    f"node {node.name} on patch {patch.index} reads only padding; the code generator needs "
                    "an input pixel per patch: choose another split or fewer patches")
            node_held = dict(held)
            for name in activation_inputs(graph, node):
                crop = memory.crops.get((node.name, name))
                if crop is not None:
                    node_held[name] = working(crop, window.input, name)
                    steps.append(_copy_step(CROP_OP, node, patch, held[name].use("input", window.input),
                                            node_held[name].use("output", window.input), window.input))
            if node is not last:
                out = working(node.output, patch.regions[node.output], node.output)
            elif memory.tile is not None:
                out = working(memory.tile, window.output, node.output)
            else:
                out = split_buffer
            held[node.output] = out
            tiled = node is last and memory.tile is not None
            steps.append(_node_step(stage, patch, node, node_held, out, prefixes[node.name], memory, choice,
                                    mark=not tiled))
            if tiled:
                steps.append(_copy_step(TILE_OP, node, patch, out.use("input", window.output),
                                        split_buffer.use("output", window.output), window.output, mark=True))
    return steps


def _node_step(stage, patch, node, held: dict[str, _Buffer], out: _Buffer, prefix: str, memory, choice,
               mark: bool) -> PlanStep:
    """The step of ``node`` on ``patch``: its kernel call, lowered from the bytes of its buffers."""
    graph = stage.graph
    window = patch.windows[node.name]
    inputs = activation_inputs(graph, node)
    patch_node = stage.patch_node(patch, node)
    uses = {name: held[name].use("input", window.input) for name in inputs}
    uses[node.output] = out.use("output", window.output)
    buffers = tuple(uses[name] for name in inputs + [node.output])
    if row_wise(graph, node):
        # one output row per call; every operand's window starts at that row of its buffer. Always row
        # by row, even on compact buffers: the kernel then depends on the patch width only, not its
        # height, which saves kernels (each takes seconds to generate) for ~30 instructions a row.
        call = row_loop_call(patch_node, graph, prefix, {name: arena_pointer(use) for name, use in uses.items()},
                             {name: use.row_stride for name, use in uses.items()}, window.output.height,
                             window.output.width, choice)
        return PlanStep(call, "patch", patch.index, window.output, buffers, mark=mark)
    if not (out.is_compact(window.output) and all(held[name].is_compact(window.input) for name in inputs)):
        raise AssertionError(f"{node.name} on patch {patch.index}: a non-row-wise node reads a strided buffer")
    shapes = {name: (1, window.input.height, window.input.width, graph.tensors[name].shape[3]) for name in inputs}
    shapes[node.output] = (1, window.output.height, window.output.width, graph.tensors[node.output].shape[3])
    produced = memory.tile if node is stage.nodes[-1] and memory.tile else node.output
    in_place = overwrites_input(memory.working, produced)
    if in_place and window.output.area > window.input.area:
        raise AssertionError(f"{node.name} on patch {patch.index}: in-place output larger than its input")
    call = layer_call(patch_node, graph_view(graph, shapes), prefix, lambda name: arena_pointer(uses[name]), choice,
                      in_place=in_place)
    return PlanStep(call, "patch", patch.index, window.output, buffers, mark=mark)
