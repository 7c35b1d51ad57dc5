"""The static memory plan: live ranges, buffer sharing, allocators, plan checks and the timeline."""

import dataclasses
import random

import numpy as np
import pytest

from edgekit.ir import Graph, Node, Tensor
from edgekit.memory import (ALLOCATORS, Buffer, LiveRange, PlanError, first_fit_by_first_use, greedy_by_size,
                            live_ranges, plan_memory, render_timeline, verify_plan)
from edgekit.memory.greedy_allocation import arena_end, move_top_first
from edgekit.ops.add import AddAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.window import same_padding


class GraphBuilder:
    """Small int8 graphs for planning: only shapes matter, so weights are zeros."""

    def __init__(self, shape):
        self.graph = Graph("test")
        self.graph.inputs.append(self._tensor("input", shape))

    def _tensor(self, base, shape, data=None):
        name = self.graph.unique_name(base)
        self.graph.add_tensor(Tensor(name, shape, "int8", data))
        return name

    def _node(self, op, inputs, attrs, out_shape):
        out = self._tensor(op, out_shape)
        self.graph.nodes.append(Node(self.graph.unique_name(f"{op}_node"), op, inputs, [out], attrs))
        return out

    def shape(self, name):
        return self.graph.tensors[name].shape

    def _window_attrs(self, x, kernel, stride):
        _, h, w, _ = self.shape(x)
        rows, cols = same_padding(h, kernel, stride), same_padding(w, kernel, stride)
        out_hw = (-(-h // stride), -(-w // stride))
        return (stride, stride), (rows[0], cols[0], rows[1], cols[1]), out_hw

    def conv(self, x, out_channels, kernel=1, stride=1):
        weights = np.zeros((out_channels, kernel, kernel, self.shape(x)[3]), np.int8)
        stride2, padding, (oh, ow) = self._window_attrs(x, kernel, stride)
        return self._node("conv2d", [x, self._tensor("w", weights.shape, weights)],
                          Conv2dAttrs(stride=stride2, padding=padding), (1, oh, ow, out_channels))

    def depthwise(self, x, kernel=3, stride=1, multiplier=1):
        channels = self.shape(x)[3] * multiplier
        weights = np.zeros((1, kernel, kernel, channels), np.int8)
        stride2, padding, (oh, ow) = self._window_attrs(x, kernel, stride)
        return self._node("depthwise_conv2d", [x, self._tensor("w", weights.shape, weights)],
                          DepthwiseConv2dAttrs(stride=stride2, padding=padding, depth_multiplier=multiplier),
                          (1, oh, ow, channels))

    def add(self, a, b):
        return self._node("add", [a, b], AddAttrs(), self.shape(a))

    def reshape(self, x, shape):
        return self._node("reshape", [x], ReshapeAttrs(shape), shape)

    def finish(self, *outputs):
        self.graph.outputs.extend(outputs)
        self.graph.lint()
        return self.graph


def random_graph(rng: random.Random) -> Graph:
    """Chains with branches: convs, depthwise (stride 1-2), residual adds, reshapes, 1-2 outputs."""
    b = GraphBuilder((1, rng.randint(4, 12), rng.randint(4, 12), rng.randint(1, 8)))
    made = [b.graph.inputs[0]]
    for _ in range(rng.randint(2, 12)):
        x = made[-1] if rng.random() < 0.7 else rng.choice(made)
        kind = rng.choice(("conv", "depthwise", "residual", "reshape"))
        if kind == "conv":
            made.append(b.conv(x, rng.randint(1, 24), rng.choice((1, 3)), rng.choice((1, 2))))
        elif kind == "depthwise":
            made.append(b.depthwise(x, 3, rng.choice((1, 2)), rng.choice((1, 1, 2))))
        elif kind == "residual":
            branch = b.conv(x, b.shape(x)[3])
            made.append(b.add(x, branch) if rng.random() < 0.5 else b.add(branch, x))
        else:
            _, h, w, c = b.shape(x)
            made.append(b.reshape(x, (1, w, h, c)))
    outputs = [made[-1]] + ([rng.choice(made[1:-1])] if len(made) > 2 and rng.random() < 0.3 else [])
    return b.finish(*dict.fromkeys(outputs))


# --- live ranges -------------------------------------------------------------------------------

def test_live_range_conventions():
    """Inputs start at step 0, a tensor ends at its last reader, outputs end at the last step."""
    b = GraphBuilder((1, 4, 4, 4))
    a = b.conv("input", 4)          # step 0
    c = b.conv(a, 4)                # step 1
    unused = b.conv(a, 4)           # step 2, never read
    d = b.add(a, c)                 # step 3
    e = b.conv(d, 4)                # step 4
    graph = b.finish(d, e)
    ranges = live_ranges(graph)
    assert ranges["input"] == LiveRange(0, 0)
    assert ranges[a] == LiveRange(0, 3)
    assert ranges[unused] == LiveRange(2, 2)
    assert ranges[d] == LiveRange(3, 4)  # a graph output, read by step 4, lives to the last step
    assert ranges[e] == LiveRange(4, 4)
    assert not any(graph.tensors[name].is_constant for name in ranges)


# --- buffer sharing ----------------------------------------------------------------------------

def test_reshape_is_a_view_with_a_merged_live_range():
    b = GraphBuilder((1, 4, 6, 8))
    a = b.conv("input", 8)
    r = b.reshape(a, (1, 6, 4, 8))
    c = b.conv(r, 8)
    d = b.conv(a, 8)                 # a is read after its view
    graph = b.finish(c, d)
    plan = plan_memory(graph)
    assert plan.offset(r) == plan.offset(a)
    assert plan.tensors[r].buffer == plan.tensors[a].buffer == a
    assert plan.aliases[r].reason == "reshape view" and not plan.aliases[r].in_place
    assert plan.tensors[r].live == LiveRange(1, 2) and plan.tensors[a].live == LiveRange(0, 3)


def test_add_in_place_takes_the_buffer_of_an_input_that_dies_there():
    b = GraphBuilder((1, 4, 4, 4))
    a = b.conv("input", 4)
    c = b.conv(a, 4)
    graph = b.finish(b.add(a, c))
    plan = plan_memory(graph)
    out = graph.outputs[0]
    assert plan.aliases[out].source == a and plan.aliases[out].in_place
    assert plan.offset(out) == plan.offset(a)
    assert out not in plan_memory(graph, inplace_add=False).aliases


def test_table_and_elementwise_ops_write_over_an_operand_of_their_shape():
    """hard-swish (a table lookup) over its input; a mul by a per-channel constant over its input; a
    squeeze-and-excite mul over the feature map, never over the small gate it broadcasts."""
    from edgekit.ops.elementwise import ElementwiseAttrs
    from edgekit.ops.mean import MeanAttrs
    from edgekit.ops.quantize import NoAttrs

    b = GraphBuilder((1, 8, 8, 4))
    a = b.conv("input", 8)
    swish = b._node("hard_swish", [a], NoAttrs(), b.shape(a))
    scaled = b._node("mul", [swish, b._tensor("scale", (8,), np.ones(8, np.int8))], ElementwiseAttrs(), b.shape(a))
    pooled = b._node("mean", [scaled], MeanAttrs((1, 2), True), (1, 1, 1, 8))
    gate = b._node("logistic", [pooled], NoAttrs(), (1, 1, 1, 8))
    excited = b._node("mul", [gate, scaled], ElementwiseAttrs(), b.shape(a))
    graph = b.finish(b.conv(excited, 4))
    plan = plan_memory(graph)
    assert {tensor: plan.aliases[tensor].source for tensor in (swish, scaled, excited)} == {
        swish: a, scaled: swish, excited: scaled}
    assert all(plan.aliases[tensor].in_place and plan.offset(tensor) == plan.offset(a)
               for tensor in (swish, scaled, excited))
    assert plan.aliases[gate].source == pooled and plan.offset(gate) != plan.offset(a)


def test_keep_add_out_of_place_when_its_inputs_are_read_later():
    b = GraphBuilder((1, 4, 4, 4))
    a = b.conv("input", 4)
    c = b.conv(a, 4)
    s = b.add(a, c)
    graph = b.finish(b.add(s, b.conv(b.add(a, c), 4)))  # a and c are read again after s
    assert s not in plan_memory(graph).aliases


def test_keep_graph_outputs_from_being_overwritten_in_place():
    b = GraphBuilder((1, 4, 4, 4))
    a = b.conv("input", 4)
    c = b.conv(a, 4)
    graph = b.finish(b.add(a, c), c)  # c is a graph output, a dies at the add
    plan = plan_memory(graph)
    assert plan.aliases[graph.outputs[0]].source == a


def test_depthwise_in_place_only_when_asked_and_one_channel_per_channel():
    b = GraphBuilder((1, 8, 8, 4))
    a = b.conv("input", 4)
    d = b.depthwise(a, stride=2)
    m = b.depthwise(d, multiplier=2)
    graph = b.finish(b.conv(m, 4))
    assert d not in plan_memory(graph).aliases
    plan = plan_memory(graph, inplace_depthwise=True)
    assert plan.aliases[d].source == a and plan.offset(d) == plan.offset(a)
    assert m not in plan.aliases


def test_shrinking_1x1_conv_writes_two_output_pixels_below_its_input():
    """8x8x64 -> 8x8x16, two pixels per call: call k's output ends before its input starts when the
    output starts one call's output (2 * 16 bytes) below the input; arena = input + 32 bytes."""
    b = GraphBuilder((1, 8, 8, 64))
    y = b.conv("input", 16)
    graph = b.finish(b.depthwise(y))
    plan = plan_memory(graph, inplace_rows=True)
    assert plan.aliases[y].source == "input" and plan.aliases[y].shift == -2 * 16
    assert plan.offset(y) == plan.offset("input") - 2 * 16
    assert plan.steps[0].live_bytes == 8 * 8 * 64 + 2 * 16 == plan.arena_bytes
    assert y not in plan_memory(graph).aliases  # off by default


def test_shrinking_1x1_conv_with_an_odd_pixel_count_writes_one_output_row_below_its_input():
    """7x7 pixels do not split into pairs: one row (7 pixels) per call, 7 * 16 bytes, rounded up to
    the 16-byte alignment."""
    b = GraphBuilder((1, 7, 7, 64))
    y = b.conv("input", 16)
    graph = b.finish(b.depthwise(y))
    assert plan_memory(graph, inplace_rows=True).aliases[y].shift == -7 * 16


def test_widening_1x1_conv_keeps_its_input_in_the_output_tail():
    """8x8x16 -> 8x8x64: the input sits in the output's last bytes plus one call's input (two
    pixels), so call k only overwrites input pixels of earlier calls."""
    b = GraphBuilder((1, 8, 8, 16))
    y = b.conv("input", 64)
    graph = b.finish(y)
    plan = plan_memory(graph, inplace_rows=True)
    assert plan.offset("input") - plan.offset(y) == 8 * 8 * 64 - 8 * 8 * 16 + 2 * 16
    assert plan.steps[0].live_bytes == 8 * 8 * 64 + 2 * 16 == plan.arena_bytes


def test_keep_a_1x1_conv_out_of_place_when_its_input_is_read_later():
    b = GraphBuilder((1, 8, 8, 8))
    x = b.conv("input", 32)
    y = b.conv(x, 16)
    graph = b.finish(b.add(b.conv(y, 32), x))
    assert y not in plan_memory(graph, inplace_rows=True).aliases


@pytest.mark.parametrize("wrong_by", [16, 2 * 16])
def test_verify_plan_rejects_a_1x1_conv_shifted_too_little(wrong_by):
    """The deliberately wrong alias: the output starts less than two output pixels below the input,
    so call 0 overwrites bytes of input pixel 0 that it still reads."""
    b = GraphBuilder((1, 8, 8, 64))
    y = b.conv("input", 16)
    graph = b.finish(b.depthwise(y))
    plan = plan_memory(graph, inplace_rows=True)
    moved = _moved(plan, y, offset=plan.offset(y) + wrong_by)
    with pytest.raises(PlanError, match=f"read after overwrite.* at least {2 * 16} bytes below the source, not "
                                        f"{2 * 16 - wrong_by}"):
        verify_plan(moved, graph)
    with pytest.raises(PlanError, match="no in-place rule"):
        verify_plan(moved)  # without the graph nothing proves the write


def _padded_depthwise(top: int):
    """input -> conv -> 1x1 depthwise, stride (1, 2), padding (top, 0, 0, 0) on 4x4x8 -> conv."""
    b = GraphBuilder((1, 4, 4, 8))
    a = b.conv("input", 8)
    weights = np.zeros((1, 1, 1, 8), np.int8)
    d = b._node("depthwise_conv2d", [a, b._tensor("w", weights.shape, weights)],
                DepthwiseConv2dAttrs(stride=(1, 2), padding=(top, 0, 0, 0)), (1, 4 + top, 2, 8))
    return b.finish(b.conv(d, 8)), a, d


def test_depthwise_in_place_only_where_its_rows_stay_behind_its_reads():
    """With one row of top padding, output row 0 (all padding) would overwrite input row 0 before
    output row 1 copies it, though the output is smaller than the input: the planner keeps it apart,
    and a plan that puts it in place anyway is rejected. Without the padding it is in place."""
    graph, a, d = _padded_depthwise(top=0)
    assert plan_memory(graph, inplace_depthwise=True).aliases[d].source == a
    graph, a, d = _padded_depthwise(top=1)
    plan = plan_memory(graph, inplace_depthwise=True)
    assert d not in plan.aliases
    forced = plan_memory(_padded_depthwise(top=0)[0], inplace_depthwise=True)  # same tensors, in place
    forced = dataclasses.replace(forced, tensors={**forced.tensors, d: dataclasses.replace(
        forced.tensors[d], size=graph.tensors[d].nbytes)})
    with pytest.raises(PlanError, match="write no input row its kernel has not read yet"):
        verify_plan(forced, graph)


# --- allocators --------------------------------------------------------------------------------

def _buffers(specs):
    return [Buffer(f"b{i}", (f"b{i}",), size, LiveRange(first, last)) for i, (size, first, last) in enumerate(specs)]


def test_greedy_by_size_matches_tflite_micro_medium_case():
    """TFLite Micro's TestGreedyMedium: (size, first, last) buffers, offsets 50, 70, 40, 0, 0; arena 90."""
    buffers = _buffers([(10, 0, 1), (20, 1, 2), (30, 2, 3), (40, 3, 4), (50, 0, 1)])
    offsets = greedy_by_size(buffers, alignment=1)
    assert [offsets[b.name] for b in buffers] == [50, 70, 40, 0, 0]


def test_greedy_by_size_matches_tflite_micro_overlap_case():
    buffers = _buffers([(100, 0, 1), (50, 2, 3), (20, 1, 2)])
    offsets = greedy_by_size(buffers, alignment=1)
    assert max(offsets[b.name] + b.size for b in buffers) == 120


def _random_buffers(rng: random.Random) -> list[Buffer]:
    """1-30 buffers of 1-5000 bytes, each live for up to 7 of 27 steps."""
    specs = []
    for _ in range(rng.randint(1, 30)):
        first = rng.randint(0, 20)
        specs.append((rng.randint(1, 5000), first, first + rng.randint(0, 6)))
    return _buffers(specs)


def _assert_no_clash(buffers: list[Buffer], offsets: dict[str, int]) -> None:
    """Brute force: no two buffers live at one step share a byte."""
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.live.overlaps(b.live):
                assert offsets[a.name] + a.size <= offsets[b.name] or offsets[b.name] + b.size <= offsets[a.name]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("method", ALLOCATORS)
def test_allocators_on_synthetic_live_ranges(method, seed):
    rng = random.Random(seed)
    buffers = _random_buffers(rng)
    alignment = rng.choice((1, 4, 16))
    offsets = ALLOCATORS[method](buffers, alignment)
    assert all(offsets[b.name] % alignment == 0 for b in buffers)
    _assert_no_clash(buffers, offsets)
    lower_bound = max(sum(b.size for b in buffers if step in b.live) for step in range(27))
    assert max(offsets[b.name] + b.size for b in buffers) >= lower_bound


@pytest.mark.parametrize("seed", range(20))
def test_moving_the_top_buffers_first_never_makes_the_arena_larger_or_clash(seed):
    buffers = _random_buffers(random.Random(seed))
    start = first_fit_by_first_use(buffers, 16)
    moved = move_top_first(buffers, start, 16)
    assert arena_end(buffers, moved) <= arena_end(buffers, start)
    _assert_no_clash(buffers, moved)


@pytest.mark.parametrize("seed", range(40))
def test_plans_of_random_graphs_verify(seed):
    rng = random.Random(seed)
    graph = random_graph(rng)
    alignment = rng.choice((1, 4, 16))
    plan = plan_memory(graph, alignment, inplace_add=rng.random() < 0.7, inplace_depthwise=rng.random() < 0.5,
                       inplace_rows=rng.random() < 0.5)
    verify_plan(plan, graph)
    assert all(p.offset % alignment == 0 for p in plan.tensors.values())
    assert plan.arena_bytes >= plan.lower_bound
    assert plan.arena_bytes == min(plan.arena_by_method.values())
    assert len(plan.steps) == len(graph.nodes)


# --- plan checks -------------------------------------------------------------------------------

def _two_convs():
    """input -> a -> c, 64 bytes each: the plan puts input at 0, a at 64, c at 0."""
    b = GraphBuilder((1, 4, 4, 4))
    a = b.conv("input", 4)
    c = b.conv(a, 4)
    graph = b.finish(c)
    plan = plan_memory(graph)
    assert (plan.offset("input"), plan.offset(a), plan.offset(c)) == (0, 64, 0)
    return graph, plan, a, c


def _moved(plan, name, **changes):
    return dataclasses.replace(plan, tensors={**plan.tensors, name: dataclasses.replace(plan.tensors[name], **changes)})


def test_verify_plan_catches_two_live_tensors_on_the_same_bytes():
    graph, plan, a, c = _two_convs()
    with pytest.raises(PlanError) as error:
        verify_plan(_moved(plan, c, offset=64))
    assert str(error.value) == (f"tensors {a!r} (bytes [64, 128), steps 0..1) and {c!r} (bytes [64, 128), "
                                "steps 1..1) are live at the same time and overlap in the arena")


def test_verify_plan_catches_misalignment():
    graph, plan, a, c = _two_convs()
    with pytest.raises(PlanError, match=f"tensor {c!r} .* is not aligned to 16 bytes"):
        verify_plan(_moved(plan, c, offset=4))


def test_verify_plan_catches_a_buffer_shared_without_an_in_place_alias():
    """Sharing a's buffer at the step a dies is only right if the op writes in place."""
    graph, plan, a, c = _two_convs()
    with pytest.raises(PlanError, match=f"{a!r} .* and {c!r} .* share a buffer"):
        verify_plan(_moved(plan, c, offset=64, buffer=a))


def test_verify_plan_with_the_graph_catches_a_missing_tensor():
    graph, plan, a, c = _two_convs()
    del plan.tensors[c]
    with pytest.raises(PlanError, match=f"activation {c!r} has no place"):
        verify_plan(plan, graph)


# --- MobileNetV2 -------------------------------------------------------------------------------

def mobilenetv2_head() -> tuple[Graph, dict]:
    """The stem and first three inverted-residual blocks of MobileNetV2 at 224 px."""
    b = GraphBuilder((1, 224, 224, 3))
    t = {"stem": b.conv("input", 32, 3, 2)}                                   # 112x112x32
    t["b1_dw"] = b.depthwise(t["stem"])                                       # 112x112x32
    t["b1_project"] = b.conv(t["b1_dw"], 16)                                  # 112x112x16
    t["b2_expand"] = b.conv(t["b1_project"], 96)                              # 112x112x96
    t["b2_dw"] = b.depthwise(t["b2_expand"], stride=2)                        # 56x56x96
    t["b2_project"] = b.conv(t["b2_dw"], 24)                                  # 56x56x24
    t["b3_expand"] = b.conv(t["b2_project"], 144)                             # 56x56x144
    t["b3_dw"] = b.depthwise(t["b3_expand"])                                  # 56x56x144
    t["b3_project"] = b.conv(t["b3_dw"], 24)                                  # 56x56x24
    t["b3_add"] = b.add(t["b2_project"], t["b3_project"])
    return b.finish(t["b3_add"]), t


def test_mobilenetv2_peak_is_the_stride_2_depthwise_without_in_place():
    """Out of place, block 2's depthwise holds 112x112x96 in and 56x56x96 out."""
    graph, t = mobilenetv2_head()
    plan = plan_memory(graph)
    expected = 112 * 112 * 96 + 56 * 56 * 96
    assert plan.lower_bound == expected == plan.arena_bytes
    assert set(plan.peak_step.tensors) == {t["b2_expand"], t["b2_dw"]}


def test_mobilenetv2_peak_is_the_classic_figure_with_in_place_depthwise():
    """With in-place depthwise the peak is MCUNetV2's figure: 112x112x16 in, 112x112x96 out (1372 kB)."""
    graph, t = mobilenetv2_head()
    plan = plan_memory(graph, inplace_depthwise=True)
    expected = 112 * 112 * 16 + 112 * 112 * 96
    assert expected // 1024 == 1372
    assert plan.lower_bound == expected == plan.arena_bytes
    assert set(plan.peak_step.tensors) == {t["b1_project"], t["b2_expand"]}


# --- timeline ----------------------------------------------------------------------------------

def test_timeline_draws_each_step_at_scale():
    b = GraphBuilder((1, 4, 4, 4))  # 64 bytes each
    graph = b.finish(b.conv(b.conv("input", 4), 4))
    plan = plan_memory(graph)
    text = render_timeline(plan, width=8)
    rows = text.splitlines()
    assert rows[2].endswith("|aaaabbbb|") and rows[3].endswith("|ccccbbbb|")
    assert "arena 128 bytes" in rows[0] and "lower bound 128 bytes" in rows[0]
    assert any(row.startswith("  b conv2d: 64 bytes at 64, steps 0..1") for row in rows)
