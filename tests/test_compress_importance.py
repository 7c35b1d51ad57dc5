"""The fast importance proxy (original's prefix cached, each candidate run from its first position)
gives what rebuilding and re-running the whole candidate network gives."""

import pytest
import torch

from compress_nets import inverted_residual_chain
from edgekit.compress import importance as importance_module
from edgekit.compress.compressor import MAX_SPAN, Tables, choose_plan, enumerate_segments
from edgekit.compress.importance import (HeldOut, ImportanceTable, candidate_plan, loss_of, reestimate,
                                         span_segments)
from edgekit.compress.network import ChainNetwork
from edgekit.compress.segment import Segment, segment_problem
from edgekit.compress.tables import Cost

# toy chain positions (compress_nets): 1 stem; 2-4 block, skip 1->4; 5-7 block, skip 4->7; 8-10 stride 2; 11 1x1
CANDIDATES = {
    "span_from_the_input": span_segments(0, 2),
    "span_inside_a_residual": span_segments(2, 4),  # its skip reads position 1, before the span
    "span_across_two_blocks": span_segments(3, 6),
    "span_to_the_end": span_segments(8, 11),
    "whole_block_with_its_skip": [Segment(4, 7)],
    "layermerge_dropped_depthwise": [Segment(4, 7, (6,))],
}


def held_out(chain, samples=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    height, width, channels = chain.input_shape
    x = torch.randn(samples, channels, height, width, generator=generator)
    return HeldOut(x, torch.randint(0, 5, (samples,), generator=generator))


def rebuilt_logits(chain, data, segments):
    """The candidate as the slow proxy built it: whole network, re-estimated from the input on."""
    original = ChainNetwork(chain).float()
    network = ChainNetwork(chain, candidate_plan(chain, segments)).float()
    reestimate(network, original, max(k for s in segments for k in s.convs), data.x)
    with torch.no_grad():
        return original(data.x), network.eval()(data.x), network


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_cached_prefix_gives_the_rebuilt_networks_loss(name):
    chain = inverted_residual_chain(seed=3)
    segments = CANDIDATES[name]
    assert all(segment_problem(chain, s, 7) is None for s in segments)
    data = held_out(chain)
    _, _, rebuilt = rebuilt_logits(chain, data, segments)
    expected = loss_of(ChainNetwork(chain).float(), data) - loss_of(rebuilt, data)
    assert abs(expected) > 1e-3  # the candidate really changes the loss (random labels: either way)
    assert ImportanceTable(chain, data).importance(segments) == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", ["span_inside_a_residual", "whole_block_with_its_skip"])
def test_against_the_original_is_minus_the_kl_divergence(name):
    chain = inverted_residual_chain(seed=3)
    data = held_out(chain)
    table = ImportanceTable(chain, data, against="original")
    assert table.base_loss == pytest.approx(0.0, abs=1e-7)
    original_logits, candidate_logits, _ = rebuilt_logits(chain, data, CANDIDATES[name])
    p, q = torch.softmax(original_logits, 1), torch.softmax(candidate_logits, 1)
    kl = float((p * (p.log() - q.log())).sum(1).mean())
    assert kl > 1e-4
    assert table.importance(CANDIDATES[name]) == pytest.approx(-kl, rel=1e-4)


def test_single_convolutions_are_free_and_results_are_memoised():
    chain = inverted_residual_chain(seed=3)
    calls = []
    table = ImportanceTable(chain, held_out(chain), progress=lambda: calls.append(1))
    assert table.importance([Segment(2, 3)]) == 0.0
    first = table.importance(span_segments(2, 4))
    assert table.importance(span_segments(2, 4)) == first
    assert len(calls) == 1


def test_prefix_cache_bounds_the_samples(monkeypatch):
    chain = inverted_residual_chain(seed=3)
    per_sample = 4 * sum(h * w * c for h, w, c in (chain.shape_at(p) for p in range(chain.length + 1)))
    monkeypatch.setattr(importance_module, "PREFIX_BYTES", 3 * per_sample + per_sample // 2)
    data = held_out(chain)
    table = ImportanceTable(chain, data)
    assert len(table.data) == 3
    first_three = HeldOut(data.x[:3], data.y[:3])
    _, _, rebuilt = rebuilt_logits(chain, first_three, CANDIDATES["span_across_two_blocks"])
    expected = loss_of(ChainNetwork(chain).float(), first_three) - loss_of(rebuilt, first_three)
    assert table.importance(CANDIDATES["span_across_two_blocks"]) == pytest.approx(expected, rel=1e-4)


def test_backbone_refuses_to_start_inside_a_segment():
    chain = inverted_residual_chain(seed=3)
    network = ChainNetwork(chain, candidate_plan(chain, [Segment(1, 4)])).float()
    with pytest.raises(ValueError, match="inside segment"):
        network.backbone(torch.zeros(1, 8, 6, 6), start=2)
    with pytest.raises(ValueError, match="against="):
        ImportanceTable(chain, held_out(chain), against="teacher")


def test_dp_scores_no_span_longer_than_a_segment():
    chain = inverted_residual_chain(seed=3)
    assert chain.length > MAX_SPAN
    costs = {}
    for segment in enumerate_segments(chain, "dp", max_kernel=7):
        size = segment.end - segment.start
        costs[segment] = Cost(10 * size if size == 1 else 5 * size, 0, 0, True)
    scored = []

    class Recording:
        def importance(self, segments):
            scored.append(segments[-1].end - segments[0].start)
            return -0.1 * scored[-1]

    choose_plan(chain, Tables(costs, 0, 0), Recording(), "dp", 10 * chain.length)
    assert min(scored) == 2 and max(scored) == MAX_SPAN
