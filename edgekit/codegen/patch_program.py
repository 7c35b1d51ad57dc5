"""The patch loop of model.c: the stage of a patched schedule run patch by patch, unrolled.

For every patch (in the stage's order) and every stage node (schedule order) it emits the kernel call that
node runs on that patch, then ``ek_mark()``, so the instruction counter sees one interval per
(patch, node); ``mark_nodes`` maps each interval to its graph node for the report.

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
from edgekit.errors import UnsupportedOpError
from edgekit.memory.patch_memory import row_wise
from edgekit.memory.patch_stage import activation_inputs
from edgekit.memory.patch_window import Region


@dataclass
class PatchLoop:
    """The emitted stage: kernel calls (for kernels and constants), C statements, mark map, and per
    call the patch it runs on and the output region it writes."""

    calls: list[LayerCall]
    code: str
    mark_nodes: list[int]
    places: list[tuple[tuple[int, int], Region]]


@dataclass(frozen=True)
class _Buffer:
    """A C pointer expression to pixel (0, 0) of ``region`` of a tensor, stored with ``row_stride``
    bytes between rows."""

    base: str
    region: Region
    channels: int

    @property
    def row_stride(self) -> int:
        return self.region.width * self.channels

    def at(self, window: Region) -> str:
        """The C pointer to the first pixel of ``window`` (inside ``region``)."""
        offset = ((window.rows[0] - self.region.rows[0]) * self.region.width
                  + window.cols[0] - self.region.cols[0]) * self.channels
        return f"({self.base} + {offset})" if offset else self.base

    def is_compact(self, window: Region) -> bool:
        return window == self.region


def _copy_rows(dst: str, dst_stride: int, src: str, src_stride: int, rows: int, row_bytes: int) -> str:
    return f"ek_copy_rows({dst}, {dst_stride}, {src}, {src_stride}, {rows}, {row_bytes});"


def emit_patch_loop(schedule, prefixes: dict[str, str], choice) -> PatchLoop:
    """C statements of ``schedule``'s stage (a ``PatchSchedule``); ``prefixes`` names each node's constants."""
    stage, memory = schedule.stage, schedule.memory
    graph = stage.graph
    arena = memory.arena
    block = arena.offset(memory.working_block) if memory.working_block else 0
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    x = graph.tensors[stage.input]
    split = graph.tensors[stage.split]
    frame = None if memory.input_by_patch else _Buffer(
        f"(ek_arena + {arena.offset(stage.input)})", Region((0, x.shape[1]), (0, x.shape[2])), x.shape[3])
    split_buffer = _Buffer(f"(ek_arena + {arena.offset(stage.split)})",
                           Region((0, split.shape[1]), (0, split.shape[2])), split.shape[3])

    def working(name: str, region: Region, source: str) -> _Buffer:
        return _Buffer(f"(ek_arena + {block + memory.working.offset(name)})", region,
                       graph.tensors[source].shape[3])

    calls: list[LayerCall] = []
    places: list[tuple[tuple[int, int], Region]] = []
    lines: list[str] = []
    marks: list[int] = []
    last = stage.nodes[-1]
    for patch in stage.patches:
        lines.append(f"/* patch {patch.index[0]},{patch.index[1]}: split rows {patch.regions[stage.split].rows}, "
                     f"cols {patch.regions[stage.split].cols} */")
        held = {}
        region = patch.regions[stage.input]
        held[stage.input] = working(stage.input, region, stage.input)
        if not region.is_empty:
            dst = held[stage.input].base
            if frame is None:
                lines.append(f"EK_CHECK(ek_model_input_window({region.rows[0]}, {region.cols[0]}, {region.height}, "
                             f"{region.width}, {dst}));")
            else:
                lines.append(_copy_rows(dst, held[stage.input].row_stride, frame.at(region), frame.row_stride,
                                        region.height, held[stage.input].row_stride))
        for node in stage.nodes:
            window = patch.windows[node.name]
            if window.output.is_empty:
                lines.append(f"/* {node.name}: computes nothing on this patch */")
            else:
                if window.input.is_empty:
                    raise UnsupportedOpError(
                        f"node {node.name} on patch {patch.index} reads only padding; the code generator needs "
                        "an input pixel per patch: choose another split or fewer patches")
                node_held = dict(held)
                for name in activation_inputs(graph, node):
                    crop = memory.crops.get((node.name, name))
                    if crop is not None:
                        node_held[name] = working(crop, window.input, name)
                        source = held[name]
                        lines.append(_copy_rows(node_held[name].base, node_held[name].row_stride,
                                                source.at(window.input), source.row_stride, window.input.height,
                                                node_held[name].row_stride))
                if node is not last:
                    out = working(node.output, patch.regions[node.output], node.output)
                elif memory.tile is not None:
                    out = working(memory.tile, window.output, node.output)
                else:
                    out = split_buffer
                held[node.output] = out
                call, code = _node_call(stage, patch, node, node_held, out, prefixes[node.name], memory, choice)
                calls.append(call)
                places.append((patch.index, window.output))
                lines.append(code)
                if node is last and memory.tile is not None:
                    lines.append(_copy_rows(split_buffer.at(window.output), split_buffer.row_stride, out.base,
                                            out.row_stride, window.output.height, out.row_stride))
            lines.append("ek_mark();")
            marks.append(index[node.name])
    return PatchLoop(calls, "\n".join(lines), marks, places)


def _node_call(stage, patch, node, held: dict[str, _Buffer], out: _Buffer, prefix: str, memory,
               choice) -> tuple[LayerCall, str]:
    """The kernel call of ``node`` on ``patch`` and its C text."""
    graph = stage.graph
    window = patch.windows[node.name]
    inputs = activation_inputs(graph, node)
    patch_node = stage.patch_node(patch, node)
    channels = {name: graph.tensors[name].shape[3] for name in inputs + [node.output]}
    if row_wise(graph, node):
        # one output row per call; every operand's window starts at that row of its buffer. Always row
        # by row, even on compact buffers: the kernel then depends on the patch width only, not its
        # height, which saves kernels (each takes seconds to generate) for ~30 instructions a row.
        row0 = {name: held[name].at(window.input) for name in inputs}
        strides = {name: held[name].row_stride for name in inputs}
        row0[node.output], strides[node.output] = out.at(window.output), out.row_stride
        call = row_loop_call(patch_node, graph, prefix, row0, strides, window.output.height, window.output.width,
                             choice)
        return call, call.c_statement()
    if not (out.is_compact(window.output) and all(held[name].is_compact(window.input) for name in inputs)):
        raise AssertionError(f"{node.name} on patch {patch.index}: a non-row-wise node reads a strided buffer")
    shapes = {name: (1, window.input.height, window.input.width, channels[name]) for name in inputs}
    shapes[node.output] = (1, window.output.height, window.output.width, channels[node.output])
    pointers = {name: held[name].base for name in inputs}
    pointers[node.output] = out.base
    produced = memory.tile if node is stage.nodes[-1] and memory.tile else node.output
    in_place = overwrites_input(memory.working, produced)
    if in_place and window.output.area > window.input.area:
        raise AssertionError(f"{node.name} on patch {patch.index}: in-place output larger than its input")
    call = layer_call(patch_node, graph_view(graph, shapes), prefix, pointers.__getitem__, choice,
                      in_place=in_place)
    return call, call.c_statement()
