"""Int16 weights layer by layer (codegen/wide_weights.py): the layers with the most output pixels per
weight get them first, as far as the flash allows, external flash included; the code generator then
gives exactly those layers the ``dsp_w16`` kernels."""

import dataclasses

import numpy as np
from test_kernels_qemu import Builder

from edgekit.codegen.program import emit_program
from edgekit.codegen.wide_weights import CODE_RESERVE_BYTES, wide_weight_layers, widened_extra_bytes
from edgekit.memory import plan_memory
from edgekit.target import load_target


def two_convs():
    """A 1x1 conv over 12x12 pixels (9 x 5 weights), then a stride-4 3x3 conv over 3x3 pixels (20 x 81)."""
    b = Builder(7, (1, 12, 12, 5))
    y = b.conv2d("x", 9, (1, 1), activation="relu6")
    return b.finish(b.conv2d(y, 20, (3, 3), stride=(4, 4)))


def with_flash(target, internal: int, external: int | None):
    """``target`` with ``internal`` bytes of internal flash and ``external`` bytes of external flash (None: none)."""
    regions = []
    for region in target.regions:
        if region.role == "code":
            region = dataclasses.replace(region, length=internal)
        if region.role == "external-weights":
            if external is None:
                continue
            region = dataclasses.replace(region, length=external)
        regions.append(region)
    return dataclasses.replace(target, regions=tuple(regions))


def constant_bytes(graph) -> int:
    return sum(t.data.nbytes for t in graph.tensors.values() if t.data is not None)


def test_layers_with_more_pixels_per_weight_are_widened_first():
    graph = two_convs()
    first, second = graph.nodes[0], graph.nodes[1]
    extra = {node.name: widened_extra_bytes(graph.tensors[node.inputs[1]].data) for node in graph.nodes}
    # 9 channels x K=5 rounded to 8 int16 values = 144 B for 45 B; 20 x K=81 rounded to 84 = 3,360 B for 1,620 B
    assert extra == {first.name: 144 - 45, second.name: 3360 - 1620}
    m7 = load_target("cortex-m7")
    base = CODE_RESERVE_BYTES + constant_bytes(graph)
    assert wide_weight_layers(graph, with_flash(m7, base - 1, None)) == frozenset()
    # room for the first layer's int16 weights only: the 144 output pixels per weight win over 9
    assert wide_weight_layers(graph, with_flash(m7, base + extra[first.name], None)) == {first.name}
    # room for either but not both: the first, though the second would save more instructions in total
    assert wide_weight_layers(graph, with_flash(m7, base + extra[second.name], None)) == {first.name}
    assert wide_weight_layers(graph, with_flash(m7, base + sum(extra.values()), None)) == {first.name, second.name}


def test_external_flash_counts_for_int16_weights():
    graph = two_convs()
    m7 = load_target("cortex-m7")
    base = CODE_RESERVE_BYTES + constant_bytes(graph)
    assert wide_weight_layers(graph, with_flash(m7, base, None)) == frozenset()
    assert wide_weight_layers(graph, with_flash(m7, base, 4096)) == {node.name for node in graph.nodes}
    # a board image's test inputs take flash too
    assert wide_weight_layers(graph, with_flash(m7, base, 4096), flash_reserve_bytes=4096) == frozenset()


def test_the_program_gives_int16_weights_to_the_chosen_layers_only(tmp_path):
    graph = two_convs()
    first = graph.nodes[0]
    m7 = load_target("cortex-m7")
    extra = widened_extra_bytes(graph.tensors[first.inputs[1]].data)
    target = with_flash(m7, CODE_RESERVE_BYTES + constant_bytes(graph) + extra, None)
    program = emit_program(graph, plan_memory(graph), target, tmp_path)
    variants = {call.node: call.kernel.variant for call in program.calls}
    assert variants == {first.name: "dsp_w16", graph.nodes[1].name: "dsp"}
    weights = {c.name: c.values for call in program.calls for c in call.constants if c.name.endswith("_w")}
    assert sorted(np.asarray(v).dtype.name for v in weights.values()) == ["int16", "int8"]
