"""Description: the golden model of patch-based inference: the patch stage run patch by patch in
exact int8, then the rest of the graph layer by layer.

It does what the firmware's patch loop will do, on NumPy arrays: for each patch (in the stage's order), crop
the patch's region of the input frame, run every stage node in schedule order on its cropped input
with the patch's padding (``PatchStage.patch_node``), through the op's own int8 reference
(``OpDef.run_int8``, the same code ``run_graph`` uses), and write the last node's output into its
tile of the split tensor. Each stage tensor exists only as its patch region, an array whose pixel
(0, 0) is the region's top-left corner. Once every tile is written, ``run_graph`` runs the rest.

The result must equal ``run_graph(graph, [x], mode="int8")`` byte for byte for every split and n.
MACs are counted here from the shapes the kernels actually ran on (``OpDef.macs``), independently
of ``PatchStage.patched_macs``, which the tests compare against.
"""

from dataclasses import dataclass

import numpy as np

from edgekit.ir.interpreter import run_graph
from edgekit.memory.patch_stage import PatchStage, StagePatch, rest_graph
from edgekit.memory.patch_window import Region
from edgekit.ops import get_op


@dataclass(frozen=True)
class PatchedRun:
    """Graph outputs by name, the assembled split tensor, and the MACs the stage's kernels ran."""

    outputs: dict[str, np.ndarray]
    split_value: np.ndarray
    stage_macs: int


def _crop(array: np.ndarray, held: Region, wanted: Region) -> np.ndarray:
    """The pixels of ``wanted`` out of an array that holds region ``held`` of its tensor."""
    rows = slice(wanted.rows[0] - held.rows[0], wanted.rows[1] - held.rows[0])
    cols = slice(wanted.cols[0] - held.cols[0], wanted.cols[1] - held.cols[0])
    return array[:, rows, cols, :]


def _run_patch(stage: PatchStage, patch: StagePatch, frame: np.ndarray) -> tuple[np.ndarray, int]:
    """One patch: the split tile and the MACs run for it."""
    graph = stage.graph
    full = Region((0, frame.shape[1]), (0, frame.shape[2]))
    values = {stage.input: _crop(frame, full, patch.regions[stage.input])}
    macs = 0
    for node in stage.nodes:
        window = patch.windows[node.name]
        if window.output.is_empty:  # no pixel of it is needed on this patch
            channels = graph.tensors[node.output].shape[3]
            values[node.output] = np.zeros((1, window.output.height, window.output.width, channels), np.int8)
            continue
        args = [graph.tensors[name].data if graph.tensors[name].is_constant
                else _crop(values[name], patch.regions[name], window.input) for name in node.inputs]
        patch_node = stage.patch_node(patch, node)
        op = get_op(node.op, node)
        (result,) = op.run_int8(patch_node, graph, args)
        if result.shape[1:3] != (window.output.height, window.output.width):
            raise RuntimeError(f"node {node.name} on patch {patch.index} computed {result.shape[1:3]} pixels, "
                               f"the plan says {window.output}; the stage geometry is wrong")
        macs += op.macs(patch_node.attrs, [arg.shape for arg in args], [result.shape])
        values[node.output] = result
    return values[stage.split], macs


def run_patch_stage(stage: PatchStage, frame: np.ndarray) -> tuple[np.ndarray, int]:
    """The split tensor assembled from all patches, and the MACs the stage's kernels ran."""
    split = stage.graph.tensors[stage.split]
    assembled = np.zeros(split.shape, dtype=np.int8)
    total_macs = 0
    for patch in stage.patches:
        tile, macs = _run_patch(stage, patch, frame)
        region = patch.regions[stage.split]
        assembled[:, region.rows[0]:region.rows[1], region.cols[0]:region.cols[1], :] = tile
        total_macs += macs
    return assembled, total_macs


def run_patched(stage: PatchStage, frame: np.ndarray) -> PatchedRun:
    """The whole graph on int8 ``frame``: the stage patch by patch, the rest layer by layer."""
    graph = stage.graph
    input_tensor = graph.tensors[stage.input]
    frame = np.asarray(frame)
    if frame.dtype != np.int8 or frame.size != input_tensor.size:
        raise ValueError(f"the frame must be int8 with {input_tensor.size} elements for input "
                         f"{input_tensor.shape}, got {frame.dtype} {frame.shape}")
    split_value, macs = run_patch_stage(stage, frame.reshape(input_tensor.shape))
    outputs = run_graph(rest_graph(graph, stage.split), [split_value], mode="int8")
    return PatchedRun(outputs, split_value, macs)
