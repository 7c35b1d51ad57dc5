"""Merging is exact: the merged chain computes what the unmerged layout computes (float64, 1e-4)."""

import numpy as np
import pytest
import torch

from compress_nets import head_graph, inverted_residual_chain, random_layer
from edgekit.compress.chain import Chain, Residual
from edgekit.compress.importance import candidate_plan
from edgekit.compress.merge import merge_plan, merge_segment, merged_geometry
from edgekit.compress.network import ChainNetwork
from edgekit.compress.segment import Plan, Segment, check_plan, segment_problem


def assert_exact(chain, plan):
    check_plan(chain, plan)
    for segment in plan.segments:
        exact, geometry = merge_segment(chain, segment), merged_geometry(chain, segment)
        assert (exact.kernel, exact.stride, exact.padding, exact.depthwise, exact.out_shape, exact.activation) == \
            (geometry.kernel, geometry.stride, geometry.padding, geometry.depthwise, geometry.out_shape,
             geometry.activation)
    x = torch.randn(3, chain.input_shape[2], chain.input_shape[0], chain.input_shape[1], dtype=torch.float64)
    with torch.no_grad():
        unmerged = ChainNetwork(chain, plan).backbone(x)[chain.length]
        merged_chain = merge_plan(chain, plan)
        merged = ChainNetwork(merged_chain).backbone(x)[merged_chain.length]
    assert merged.shape == unmerged.shape
    assert float((merged - unmerged).abs().max()) < 1e-4
    assert merged_chain.length == len(plan.segments)
    return merged_chain


# positions of the toy chain: 1 stem 3x3/2; 2-4 block (expand, dw, project) + skip 1->4; 5-7 the same,
# skip 4->7; 8-10 stride-2 block without skip; 11 a 1x1
CASES = {
    "pointwise_after_depthwise": [Segment(2, 4, keep_activation=False)],
    "whole_inverted_residual_with_skip": [Segment(1, 4)],
    "two_residual_blocks": [Segment(1, 7)],
    "stride_2_then_1x1": [Segment(8, 10)],
    "stride_2_stem_into_block": [Segment(0, 1), Segment(1, 4), Segment(7, 11)],
    "moved_padding_from_depthwise_to_expand": [Segment(1, 3)],
    "skip_taken_inside_a_segment": [Segment(0, 7)],
    "layermerge_dropped_depthwise": [Segment(1, 4, (3,)), Segment(4, 7, (6,))],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_is_exact(case):
    chain = inverted_residual_chain(seed=3)
    assert_exact(chain, candidate_plan(chain, CASES[case]))


def test_depthwise_after_depthwise_stays_depthwise():
    rng = np.random.default_rng(0)
    first = random_layer(rng, (10, 10, 6), 0, 3, 1, depthwise=True)
    second = random_layer(rng, first.out_shape, 0, 5, 2, depthwise=True)
    chain = Chain([first, second], [], (10, 10, 6), head_graph(second.out_shape, 3))
    merged = assert_exact(chain, Plan([Segment(0, 2)]))
    assert merged.layers[0].depthwise and merged.layers[0].kernel == (7, 7)


def test_whole_block_folds_the_skip_into_the_centre_tap():
    """With every weight zero the merged block must be the identity: the skip alone, on the centre tap."""
    chain = inverted_residual_chain(seed=1)
    for k in (2, 3, 4):
        chain.layers[k - 1].weight[:] = 0
        chain.layers[k - 1].bias[:] = 0
    layer = assert_exact(chain, candidate_plan(chain, [Segment(1, 4)])).layers[1]
    assert layer.kernel == (3, 3) and layer.stride == (1, 1) and layer.padding == (1, 1, 1, 1)
    centre = layer.weight[:, 1, 1, :]
    np.testing.assert_array_equal(centre, np.eye(centre.shape[0]))
    assert np.count_nonzero(layer.weight) == centre.shape[0]


def test_merged_kernel_and_stride_follow_the_formula():
    chain = inverted_residual_chain(seed=2)
    merged = assert_exact(chain, candidate_plan(chain, [Segment(0, 4)]))
    # stem 3x3/2 then 1x1, dw 3x3, 1x1: k = 3 + (3 - 1) * 2 = 7, stride 2, padding 1 + 2 * 1 = 3
    assert merged.layers[0].kernel == (7, 7) and merged.layers[0].stride == (2, 2)
    assert merged.layers[0].padding[:2] == (3, 3)


def test_segments_that_split_a_residual_are_refused():
    chain = inverted_residual_chain()
    assert "splits the residual 1->4 at its start" in segment_problem(chain, Segment(0, 2), 9)
    assert "at its end" in segment_problem(chain, Segment(3, 5), 9)
    assert "exceeds 3x3" in segment_problem(chain, Segment(1, 7), 3)
    assert "cannot become an identity" in segment_problem(chain, Segment(1, 4, (4,)), 9)
    assert segment_problem(chain, Segment(2, 4), 9) is None  # inside the residual: the add stays


def test_unfolded_residual_keeps_its_add():
    chain = inverted_residual_chain()
    merged = assert_exact(chain, candidate_plan(chain, [Segment(2, 4)]))
    assert Residual(1, 3, None) in merged.residuals


def test_exported_onnx_runs_the_merged_network_in_edgekit(tmp_path):
    """The ONNX written by `edgekit compress`, imported by edgekit, equals the unmerged layout in float."""
    from edgekit.compress.network import export_onnx
    from edgekit.ir.interpreter import run_graph
    from edgekit.model_source import load_model

    chain = inverted_residual_chain(seed=4)
    plan = candidate_plan(chain, [Segment(1, 4), Segment(4, 7, (6,)), Segment(7, 10)])
    export_onnx(merge_plan(chain, plan), tmp_path / "merged.onnx")
    graph = load_model(str(tmp_path / "merged.onnx")).graph
    x = np.random.default_rng(0).standard_normal((1, 12, 12, 3)).astype(np.float32)
    got = run_graph(graph, [x], mode="float")[graph.outputs[0]]
    with torch.no_grad():
        expected = ChainNetwork(chain, plan)(torch.from_numpy(x.transpose(0, 3, 1, 2)).double()).numpy()
    assert len([n for n in graph.nodes if n.op in ("conv2d", "depthwise_conv2d")]) == len(plan.segments)
    np.testing.assert_allclose(got, expected, atol=1e-4)
