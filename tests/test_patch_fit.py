"""--patch fit, the default schedule: layer by layer when it fits, else the patched plan that fits with
the fewest recomputed MACs, else the smallest peak; and the advice when nothing fits.

The expected choices are worked out here from the candidates of an unbounded ``--patch auto``
search (every split and n, with their peaks and overheads), not from the fit search itself.
"""

import pytest

from edgekit.compiler import _check_arena_fits, plan_schedule
from edgekit.errors import DoesNotFitError
from edgekit.ir import Node, QuantParams, Tensor
from edgekit.memory.patch_search import search_patch_plan
from edgekit.ops.transpose import TransposeAttrs
from edgekit.target import load_target
from test_memory_patch_stage import Int8Builder, mobilenetv2_like


@pytest.fixture(scope="module")
def graph():
    return mobilenetv2_like()


@pytest.fixture(scope="module")
def every_candidate(graph):
    """All (split, n) the search can try, with no bound on the MAC overhead."""
    return search_patch_plan(graph, max_mac_overhead=float("inf")).candidates


def test_fit_runs_layer_by_layer_when_that_fits(graph):
    off = plan_schedule(graph, "off", 0.2, False)
    fit = plan_schedule(graph, "fit", 0.2, False, budget=off.peak_bytes)
    assert fit.patches is None and fit.peak_bytes == off.peak_bytes
    assert fit.summary()["plan"] == "layer by layer" and "fits the activation budget" in fit.reason


def test_fit_takes_the_least_mac_overhead_that_fits(graph, every_candidate):
    off = plan_schedule(graph, "off", 0.2, False)
    smallest = min(c.peak_bytes for c in every_candidate)
    budget = (smallest + off.peak_bytes) // 2
    fitting = [c for c in every_candidate if c.peak_bytes <= budget]
    expected = min(fitting, key=lambda c: (c.mac_overhead, c.peak_bytes, c.n))
    fit = plan_schedule(graph, "fit", 0.2, False, budget=budget)
    assert (fit.patches.stage.split, fit.patches.stage.n) == (expected.split, expected.n)
    assert fit.peak_bytes <= budget
    # auto would take the smallest peak instead, a different plan here
    assert min(fitting, key=lambda c: c.peak_bytes).mac_overhead > expected.mac_overhead
    assert fit.summary()["plan"] == "patched" and "recomputes the fewest MACs" in fit.reason
    assert fit.to_json()["search"]["goal"] == "fit"


def test_fit_takes_the_smallest_peak_when_nothing_fits(graph, every_candidate):
    fit = plan_schedule(graph, "fit", 0.2, False, budget=100)
    assert fit.peak_bytes == min(c.peak_bytes for c in every_candidate)
    assert "nothing fits" in fit.reason


def test_keep_auto_within_its_mac_bound(graph, every_candidate):
    """--patch auto keeps its meaning: the smallest peak within the bound, whatever the budget."""
    auto = plan_schedule(graph, "auto", 0.1, False, budget=100)
    within = [c for c in every_candidate if c.mac_overhead <= 0.1]
    assert auto.peak_bytes == min(c.peak_bytes for c in within)


def test_auto_advises_the_bound_only_when_a_larger_one_fits(graph, every_candidate):
    """A plan over the MAC bound that fits the board is named with the bound it needs."""
    target = load_target("cortex-m7")
    auto = plan_schedule(graph, "auto", 0.0, False)
    if auto.peak_bytes <= target.ram.length:  # the small graph fits anyway: shrink the board
        target = type(target)(**{**target.__dict__, "regions": tuple(
            type(r)(**{**r.__dict__, "length": auto.peak_bytes - 16}) if r.role == "ram" else r
            for r in target.regions)})
    with pytest.raises(DoesNotFitError, match=r"use --patch fit or --max-patch-overhead 0\.\d\d") as error:
        _check_arena_fits(auto, auto.layer_rows(graph), target, graph)
    assert "split" in str(error.value)


def test_a_blocked_split_names_the_node_and_gives_no_bound_advice():
    """A transpose at the input blocks every split: the error names it and does not suggest a larger
    --max-patch-overhead, which cannot help."""
    builder = Int8Builder((3, 40), 40, seed=5)  # an NCHW-like frame: 3 rows of 40 x 40
    x = builder.graph.inputs[0]
    quant = QuantParams.per_tensor(0.05, 0)
    builder.graph.add_tensor(Tensor("nhwc", (1, 40, 40, 3), "int8", quant=quant))
    builder.graph.tensors[x].quant = quant
    builder.graph.tensors[x].shape = (1, 3, 40, 40)
    builder.graph.nodes.append(Node("to_nhwc", "transpose", [x], ["nhwc"], TransposeAttrs((0, 2, 3, 1))))
    y = builder.conv("nhwc", 64, kernel=3)
    graph = builder.head(builder.conv(y, 8, kernel=3, stride=2))
    schedule = plan_schedule(graph, "fit", 0.2, False, budget=1000)
    assert schedule.patches is None and not schedule.search.candidates
    tiny = load_target("cortex-m4")
    tiny = type(tiny)(**{**tiny.__dict__, "regions": tuple(
        type(r)(**{**r.__dict__, "length": 1000}) if r.role == "ram" else r for r in tiny.regions)})
    with pytest.raises(DoesNotFitError) as error:
        _check_arena_fits(schedule, schedule.layer_rows(graph), tiny, graph)
    message = str(error.value)
    assert "no patch split is possible" in message and "node to_nhwc is a transpose" in message
    assert "--max-patch-overhead" not in message
