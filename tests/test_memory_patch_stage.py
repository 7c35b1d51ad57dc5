"""Patch-based inference on DAGs: stage regions, the int8 patch-by-patch reference, memory and search.

Graphs are built directly in int8 with random quantization parameters, so every test is exact and
fast. The reference must match ``run_graph`` byte for byte for every valid split and n, including
n that does not divide the split tensor's size.
"""

import random

import numpy as np
import pytest

from edgekit.ir import Graph, Node, QuantParams, Tensor
from edgekit.ir.interpreter import run_graph
from edgekit.memory.patch_memory import plan_patch_memory
from edgekit.memory.patch_reference import run_patched
from edgekit.memory.patch_search import build_patch_plan, search_patch_plan, split_candidates
from edgekit.memory.patch_stage import PatchStageError, plan_stage, stage_problem
from edgekit.memory.patch_window import Region, plan_patches
from edgekit.ops.add import AddAttrs
from edgekit.ops.clamp import ClampAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.pad import PadAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.window import same_padding


class Int8Builder:
    """Appends int8 nodes with random weights and random output quantization to a graph."""

    def __init__(self, hw, channels, seed):
        self.rng = np.random.default_rng(seed)
        self.graph = Graph("patch_test")
        x = self._activation("x", (1, *hw, channels))
        self.graph.inputs.append(x)

    def _activation(self, base, shape, quant=None):
        name = self.graph.unique_name(base)
        if quant is None:
            quant = QuantParams.per_tensor(self.rng.uniform(0.02, 0.1), int(self.rng.integers(-30, 30)))
        self.graph.add_tensor(Tensor(name, shape, "int8", quant=quant))
        return name

    def _constant(self, base, data, quant):
        name = self.graph.unique_name(base)
        self.graph.add_tensor(Tensor(name, data.shape, str(data.dtype), data, quant))
        return name

    def shape(self, name):
        return self.graph.tensors[name].shape

    def _node(self, op, inputs, attrs, out_shape, same_quant=False):
        quant = self.graph.tensors[inputs[0]].quant if same_quant else None
        out = self._activation(op, out_shape, quant)
        self.graph.nodes.append(Node(self.graph.unique_name(f"node_{op}"), op, inputs, [out], attrs))
        return out

    def _weights(self, x, shape, axis):
        channels = shape[axis]
        scales = self.rng.uniform(0.002, 0.02, channels)
        weights = self._constant("w", self.rng.integers(-127, 128, shape).astype(np.int8),
                                 QuantParams(scales, np.zeros(channels), axis))
        bias_scale = self.graph.tensors[x].quant.scalar_scale * scales
        bias = self._constant("b", self.rng.integers(-2000, 2000, channels).astype(np.int32),
                              QuantParams(bias_scale, np.zeros(channels), 0))
        return weights, bias

    def _padding(self, x, kernel, stride, dilation, same):
        if not same:
            return (0, 0, 0, 0)
        rows, cols = (same_padding(size, kernel, stride, dilation) for size in self.shape(x)[1:3])
        return rows[0], cols[0], rows[1], cols[1]

    def _out_hw(self, x, kernel, stride, dilation, padding):
        from edgekit.ops.window import output_hw

        return output_hw(self.shape(x)[1:3], (kernel, kernel), (stride, stride), (dilation, dilation), padding)

    def conv(self, x, out_channels, kernel=1, stride=1, dilation=1, same=True, activation="relu6"):
        padding = self._padding(x, kernel, stride, dilation, same)
        weights, bias = self._weights(x, (out_channels, kernel, kernel, self.shape(x)[3]), 0)
        attrs = Conv2dAttrs((stride, stride), (dilation, dilation), padding, activation)
        return self._node("conv2d", [x, weights, bias], attrs,
                          (1, *self._out_hw(x, kernel, stride, dilation, padding), out_channels))

    def depthwise(self, x, kernel=3, stride=1, dilation=1, same=True, activation="relu6"):
        channels = self.shape(x)[3]
        padding = self._padding(x, kernel, stride, dilation, same)
        weights, bias = self._weights(x, (1, kernel, kernel, channels), 3)
        attrs = DepthwiseConv2dAttrs((stride, stride), (dilation, dilation), padding, 1, activation)
        return self._node("depthwise_conv2d", [x, weights, bias], attrs,
                          (1, *self._out_hw(x, kernel, stride, dilation, padding), channels))

    def pool(self, x, op, kernel, stride, same=True):
        padding = self._padding(x, kernel, stride, 1, same)
        attrs = Pool2dAttrs((kernel, kernel), (stride, stride), padding)
        return self._node(op, [x], attrs, (1, *self._out_hw(x, kernel, stride, 1, padding), self.shape(x)[3]),
                          same_quant=True)

    def pad(self, x, top, left, bottom, right):
        _, h, w, c = self.shape(x)
        attrs = PadAttrs(((0, 0), (top, bottom), (left, right), (0, 0)))
        return self._node("pad", [x], attrs, (1, h + top + bottom, w + left + right, c), same_quant=True)

    def clamp(self, x):
        return self._node("clamp", [x], ClampAttrs("relu"), self.shape(x), same_quant=True)

    def add(self, a, b):
        return self._node("add", [a, b], AddAttrs(), self.shape(a))

    def inverted_residual(self, x, expand, stride=1, out_channels=None):
        """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project, plus the input when shapes allow."""
        channels = self.shape(x)[3]
        out_channels = out_channels or channels
        y = self.conv(x, channels * expand)
        y = self.depthwise(y, stride=stride)
        y = self.conv(y, out_channels, activation=None)
        return self.add(x, y) if stride == 1 and out_channels == channels else y

    def head(self, x, classes=5):
        """A layer-by-layer tail: 1x1 conv then a 2x2 average pool."""
        y = self.pool(self.conv(x, classes), "avg_pool2d", 2, 2, same=False)
        self.graph.outputs.append(y)
        self.graph.lint()
        return self.graph


def random_graph(seed: int) -> Graph:
    """A random spatial DAG: convs (kernels 1-5, strides 1-2, dilations 1-2, SAME or VALID), pools,
    pads, clamps and residual blocks, on a non-square input."""
    rng = random.Random(seed)
    builder = Int8Builder((rng.randint(14, 26), rng.randint(14, 26)), rng.choice((1, 3)), seed)
    x = builder.conv(builder.graph.inputs[0], rng.choice((4, 6)), kernel=3, stride=rng.choice((1, 2)))
    for _ in range(rng.randint(3, 6)):
        if min(builder.shape(x)[1:3]) < 6:
            break
        kind = rng.choice(("conv", "depthwise", "pool", "pad", "clamp", "residual", "residual"))
        if kind == "conv":
            x = builder.conv(x, rng.choice((4, 8)), kernel=rng.choice((1, 3, 5)), stride=rng.choice((1, 2)),
                             dilation=rng.choice((1, 2)), same=rng.random() < 0.7)
        elif kind == "depthwise":
            x = builder.depthwise(x, kernel=rng.choice((3, 5)), stride=rng.choice((1, 2)), dilation=rng.choice((1, 2)))
        elif kind == "pool":
            x = builder.pool(x, rng.choice(("avg_pool2d", "max_pool2d")), rng.choice((2, 3)), rng.choice((1, 2)),
                             same=rng.random() < 0.5)
        elif kind == "pad":
            x = builder.pad(x, *(rng.randint(0, 2) for _ in range(4)))
        elif kind == "clamp":
            x = builder.clamp(x)
        else:
            x = builder.inverted_residual(x, expand=rng.choice((2, 3)))
    return builder.head(x)


def random_frame(graph: Graph, seed: int = 0) -> np.ndarray:
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


RANDOM_GRAPHS = [random_graph(seed) for seed in range(8)]


@pytest.mark.parametrize("seed", range(len(RANDOM_GRAPHS)))
def test_patch_reference_is_bit_exact_for_every_split_and_n(seed):
    """Every valid split and n = 1, 2, 3 (3 rarely divides the size) and the largest n."""
    graph = RANDOM_GRAPHS[seed]
    frame = random_frame(graph, seed)
    expected = run_graph(graph, [frame], mode="int8", keep_all=True)
    splits = split_candidates(graph)
    assert splits
    for split in splits:
        largest = min(graph.tensors[split].shape[1:3])
        for n in sorted({1, 2, min(3, largest), largest}):
            stage = plan_stage(graph, split, n)
            run = run_patched(stage, frame)
            np.testing.assert_array_equal(run.split_value, expected[split], err_msg=f"split {split} n {n}")
            for name in graph.outputs:
                np.testing.assert_array_equal(run.outputs[name], expected[name])
            assert run.stage_macs == stage.patched_macs


def residual_graph() -> tuple[Graph, dict]:
    """x 8x8 -> expand 1x1 (a) -> depthwise 3x3 SAME (b) -> project 1x1 (c); d = a + c."""
    builder = Int8Builder((8, 8), 2, seed=1)
    a = builder.conv(builder.graph.inputs[0], 4)
    b = builder.depthwise(a)
    c = builder.conv(b, 4, activation=None)
    d = builder.add(a, c)
    graph = builder.head(d)
    return graph, {"x": graph.inputs[0], "a": a, "b": b, "c": c, "d": d}


def test_residual_input_region_is_the_union_of_both_branches():
    """The add needs a on the tile, the depthwise needs a on the tile plus a one-pixel halo: a's
    region is the union, clipped to the tensor, and the depthwise pads only where the window leaves it."""
    graph, t = residual_graph()
    stage = plan_stage(graph, t["d"], 2)
    top_left, bottom_right = stage.patches[0], stage.patches[3]
    assert top_left.regions[t["d"]] == top_left.regions[t["c"]] == top_left.regions[t["b"]] == Region((0, 4), (0, 4))
    assert top_left.regions[t["a"]] == top_left.regions[t["x"]] == Region((0, 5), (0, 5))
    depthwise = top_left.windows[graph.producer(t["b"]).name]
    assert depthwise.window == Region((-1, 5), (-1, 5))
    assert depthwise.padding == (1, 1, 0, 0)
    assert bottom_right.regions[t["a"]] == Region((3, 8), (3, 8))
    assert bottom_right.windows[graph.producer(t["b"]).name].padding == (0, 0, 1, 1)
    add = top_left.windows[graph.producer(t["d"]).name]
    assert add.input == Region((0, 4), (0, 4)) and add.padding == (0, 0, 0, 0)


def test_regions_on_a_chain_match_plan_patches():
    """On a chain with dilation 1 and stride <= kernel, the DAG boxes equal patch_window's exact sets."""
    builder = Int8Builder((19, 17), 3, seed=2)
    x = builder.conv(builder.graph.inputs[0], 4, kernel=3, stride=2)
    x = builder.depthwise(x, kernel=5)
    x = builder.pool(x, "max_pool2d", 3, 2)
    graph = builder.head(x)
    stage = plan_stage(graph, x, 3)
    chain = plan_patches([stage.layers[node.name] for node in stage.nodes], 3)
    for patch, expected in zip(stage.patches, chain.patches):
        assert list(patch.windows.values()) == list(expected.layers)


def test_mac_overhead_counts_recomputed_halos():
    graph, t = residual_graph()
    stage = plan_stage(graph, t["d"], 2)
    # expand 1x1 runs on 5x5 per patch instead of 4x4; the depthwise and project on 4x4.
    expand, depthwise, project = (stage.layers[node.name].macs_per_pixel for node in stage.nodes[:3])
    assert stage.layer_macs == 64 * (expand + depthwise + project)
    assert stage.patched_macs == 4 * 25 * expand + 64 * (depthwise + project)
    assert plan_stage(graph, t["d"], 1).mac_overhead == 0.0


def test_rejects_a_split_inside_a_residual_block():
    graph, t = residual_graph()
    assert "after the add" in stage_problem(graph, t["c"])
    with pytest.raises(PatchStageError, match="node_add.* reads stage tensor"):
        plan_stage(graph, t["b"], 2)


def test_rejects_non_spatial_ops_and_too_many_patches():
    graph, t = residual_graph()
    with pytest.raises(PatchStageError, match="choose n from 1 to 8"):
        plan_stage(graph, t["d"], 9)
    graph.nodes.append(Node("flatten", "reshape", [graph.outputs[0]], ["flat"]))
    graph.add_tensor(Tensor("flat", (1, 5), "int8"))
    assert "is a reshape" in stage_problem(graph, "flat")


def test_patch_memory_counts_frame_split_and_the_largest_patch_regions():
    graph, t = residual_graph()
    stage = plan_stage(graph, t["d"], 2)
    framed = plan_patch_memory(stage, alignment=1)
    by_patch = plan_patch_memory(stage, input_by_patch=True, alignment=1)
    # per patch: a at 5x5, b and c at 4x4; a is read by the add, so the depthwise cannot overwrite it
    assert framed.working.tensors[t["a"]].size == 5 * 5 * 4
    assert framed.stage_bytes == 8 * 8 * 2 + 8 * 8 * 4 + framed.working.arena_bytes
    # the frame stays whole; its window per patch is copied into the working block for the kernels
    assert framed.working.tensors[t["x"]].size == 5 * 5 * 2
    assert by_patch.working.tensors[t["x"]].size == 5 * 5 * 2
    assert by_patch.stage_bytes == 8 * 8 * 4 + by_patch.working.arena_bytes
    assert by_patch.peak_bytes <= framed.peak_bytes
    assert [step.phase for step in framed.steps] == ["patch"] * 4 + ["layer"] * 2
    assert framed.peak_bytes >= max(step.live_bytes for step in framed.steps)


def mobilenetv2_like() -> Graph:
    """48x48 input, a stride-2 stem, and inverted residual blocks down to 6x6."""
    builder = Int8Builder((48, 48), 3, seed=3)
    x = builder.conv(builder.graph.inputs[0], 8, kernel=3, stride=2)
    x = builder.conv(builder.depthwise(x), 8, activation=None)
    x = builder.inverted_residual(x, expand=6, stride=2, out_channels=12)
    x = builder.inverted_residual(x, expand=6)
    x = builder.inverted_residual(x, expand=6, stride=2, out_channels=16)
    x = builder.inverted_residual(x, expand=6)
    x = builder.inverted_residual(x, expand=6, stride=2, out_channels=24)
    return builder.head(x)


def test_search_beats_layer_by_layer_within_the_mac_bound():
    graph = mobilenetv2_like()
    search = search_patch_plan(graph, max_mac_overhead=0.2)
    chosen = search.chosen
    assert chosen is not None
    assert chosen.memory.peak_bytes < 0.6 * search.baseline.arena_bytes
    assert chosen.mac_overhead <= 0.2
    feasible = [c for c in search.candidates if c.feasible]
    assert chosen.memory.sram_bytes == min(c.peak_bytes + c.scratch_bytes for c in feasible)
    # each split stops at its first n over the MAC bound (more patches only recompute more halo)
    for split in {c.split for c in search.candidates}:
        tried = [c for c in search.candidates if c.split == split]
        assert [c.n for c in tried] == list(range(2, 2 + len(tried)))
        assert all(c.feasible for c in tried[:-1])
    # a split inside a residual block is never a candidate
    assert all(stage_problem(graph, c.split) is None for c in search.candidates)
    frame = random_frame(graph)
    expected = run_graph(graph, [frame], mode="int8")
    actual = run_patched(chosen.stage, frame).outputs
    assert all(np.array_equal(actual[name], expected[name]) for name in graph.outputs)
    streamed = search_patch_plan(graph, max_mac_overhead=0.2, input_by_patch=True)
    assert streamed.peak_bytes <= chosen.memory.peak_bytes


def test_build_patch_plan_takes_a_node_index_or_a_tensor_name():
    graph = mobilenetv2_like()
    split = graph.nodes[4].output
    by_index = build_patch_plan(graph, "4:3")
    by_name = build_patch_plan(graph, f"{split}:3")
    assert by_index.stage.split == by_name.stage.split == split
    assert by_index.memory.peak_bytes == by_name.memory.peak_bytes
    assert by_index.to_json()["split_node"] == 4
    with pytest.raises(PatchStageError, match="expected SPLIT:N"):
        build_patch_plan(graph, "4")
    with pytest.raises(PatchStageError, match="neither a node name, a tensor name nor a node index"):
        build_patch_plan(graph, "nope:2")


def test_plan_checker_rejects_a_split_tensor_placed_over_frame_rows_a_later_patch_reads():
    """The deliberately wrong alias of the frame reuse: the split tensor moved 16 bytes further into
    the frame overwrites frame bytes that a later patch still copies out."""
    import dataclasses

    from edgekit.memory.patch_memory import STAGE_OP, STAGE_RULE, schedule_accesses, schedule_graph
    from edgekit.memory.plan_check import PlanError, verify_plan

    graph = mobilenetv2_like()
    schedule = build_patch_plan(graph, "4:3:row-major")
    memory, stage = schedule.memory, schedule.stage
    assert memory.frame_reuse_bytes > 0
    arena = memory.arena
    graph_of_schedule, _ = schedule_graph(graph, stage.split, memory.working.arena_bytes, False)
    accesses, rules = schedule_accesses(graph_of_schedule, stage), {STAGE_OP: STAGE_RULE}
    verify_plan(arena, graph_of_schedule, accesses, rules)
    split = arena.tensors[stage.split]
    moved = dataclasses.replace(arena, tensors={**arena.tensors, stage.split: dataclasses.replace(
        split, offset=split.offset + 16)})
    with pytest.raises(PlanError, match="read after overwrite"):
        verify_plan(moved, graph_of_schedule, accesses, rules)
    # column-major keeps every frame row until the last column: the split barely reaches into it
    assert build_patch_plan(graph, "4:3:column-major").memory.frame_reuse_bytes < memory.frame_reuse_bytes


def test_a_stage_of_one_row_wise_node_plans_and_runs_exactly():
    """A Keras Rescaling layer (a MUL by a constant) right after the input, as the whole patch stage:
    the row-wise node writes the split rows itself, so the patch graph has no node at all."""
    from edgekit.ops.elementwise import ElementwiseAttrs

    builder = Int8Builder((12, 12), 3, 4)
    x = builder.graph.inputs[0]
    scale = builder._constant("scale", np.array([3, -7, 5], np.int8), QuantParams.per_tensor(0.02, 0))
    scaled = builder._node("mul", [x, scale], ElementwiseAttrs(), builder.shape(x))
    graph = builder.head(builder.conv(scaled, 4, kernel=3))
    schedule = build_patch_plan(graph, "0:2")
    assert list(schedule.stage.nodes) == graph.nodes[:1] and schedule.memory.tile is None
    frame = np.random.default_rng(2).integers(-128, 128, builder.shape(x), dtype=np.int8)
    np.testing.assert_array_equal(run_patched(schedule.stage, frame).outputs[graph.outputs[0]],
                                  run_graph(graph, [frame])[graph.outputs[0]])
