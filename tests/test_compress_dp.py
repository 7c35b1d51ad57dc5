"""Both dynamic programs return the optimum: equal to brute force on small random instances."""

import itertools

import numpy as np
import pytest

from edgekit.compress.dp import Candidate, InfeasibleBudgetError, solve_dp, solve_layermerge


def random_dp_instance(rng, length):
    cost, importance = {}, {}
    for i in range(length):
        for j in range(i + 1, length + 1):
            if j == i + 1 or rng.random() < 0.7:
                cost[(i, j)] = int(rng.integers(1, 30))
            if j == i + 1:
                importance[(i, j)] = 0.0
            elif rng.random() < 0.8:
                importance[(i, j)] = -float(rng.random())
    return cost, importance


def brute_force_dp(length, cost, importance, budget):
    """Every position 1..L-1 is a kept activation, a cut without activation, or merged through."""
    best = -np.inf
    for labels in itertools.product("akm", repeat=length - 1):
        boundaries = [0] + [p + 1 for p, label in enumerate(labels) if label != "m"] + [length]
        kept = {0, length} | {p + 1 for p, label in enumerate(labels) if label == "a"}
        segments = list(zip(boundaries, boundaries[1:]))
        if any(s not in cost for s in segments):
            continue
        spans = list(zip(sorted(kept), sorted(kept)[1:]))
        if any(s not in importance for s in spans):
            continue
        if sum(cost[s] for s in segments) <= budget:
            best = max(best, sum(importance[s] for s in spans))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_dp_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(3, 10))
    cost, importance = random_dp_instance(rng, length)
    full = sum(cost[(i, i + 1)] for i in range(length))
    budget = int(full * rng.uniform(0.4, 1.0))
    expected = brute_force_dp(length, cost, importance, budget)
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleBudgetError, match="raise --budget"):
            solve_dp(length, cost, importance, budget)
        return
    solution = solve_dp(length, cost, importance, budget)
    assert solution.importance == pytest.approx(expected)
    assert solution.cost <= budget
    assert [s.start for s in solution.segments][0] == 0 and solution.segments[-1].end == length
    recomputed = sum(cost[(s.start, s.end)] for s in solution.segments)
    assert recomputed == solution.cost


def test_dp_on_twelve_positions_equals_brute_force():
    rng = np.random.default_rng(100)
    cost, importance = random_dp_instance(rng, 12)
    budget = int(sum(cost[(i, i + 1)] for i in range(12)) * 0.7)
    assert solve_dp(12, cost, importance, budget).importance == pytest.approx(
        brute_force_dp(12, cost, importance, budget))


def random_candidates(rng, length):
    candidates = [Candidate(i, i + 1, int(rng.integers(5, 30)), 0.0) for i in range(length)]
    for i in range(length):
        for j in range(i + 2, min(length, i + 5) + 1):
            for variant in range(int(rng.integers(0, 3))):
                candidates.append(Candidate(i, j, int(rng.integers(1, 40)), -float(rng.random()), (variant,)))
    return candidates


def brute_force_layermerge(length, candidates, budget):
    by_start = {}
    for c in candidates:
        by_start.setdefault(c.start, []).append(c)
    best = -np.inf

    def walk(position, cost, value):
        nonlocal best
        if cost > budget:
            return
        if position == length:
            best = max(best, value)
            return
        for c in by_start.get(position, []):
            walk(c.end, cost + c.cost, value + c.importance)

    walk(0, 0, 0.0)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_layermerge_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(3, 13))
    candidates = random_candidates(rng, length)
    full = sum(c.cost for c in candidates if c.end == c.start + 1)
    budget = int(full * rng.uniform(0.3, 1.0))
    expected = brute_force_layermerge(length, candidates, budget)
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleBudgetError):
            solve_layermerge(length, candidates, budget)
        return
    solution = solve_layermerge(length, candidates, budget)
    assert solution.importance == pytest.approx(expected)
    assert solution.cost <= budget


def test_infeasible_budget_names_the_cheapest_plan():
    candidates = [Candidate(0, 1, 10, 0.0), Candidate(1, 2, 10, 0.0), Candidate(0, 2, 15, -1.0)]
    with pytest.raises(InfeasibleBudgetError, match=r"below the cheapest layermerge plan \(15\)"):
        solve_layermerge(2, candidates, 14)
    assert solve_layermerge(2, candidates, 15).cost == 15
    assert solve_layermerge(2, candidates, 20).importance == 0.0
