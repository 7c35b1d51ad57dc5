"""The two dynamic programs that choose what to merge under a latency budget.

``dp`` (Kim et al., ICML 2023). Positions 0..L; T[i, j] the cost of segment (i, j] merged into
one convolution, I[i, j] the importance of the span (i, j) whose inner activations are removed.
  stage 1: T_opt[i, j] = min(T[i, j], min_k T_opt[i, k] + T[k, j])   (best merge of a linear span)
  stage 2: f[j, c] = max_i f[i, c - T_opt[i, j]] + I[i, j]            (knapsack over spans)
The spans' boundaries keep their activations; cuts inside a span keep none.

``layermerge`` (Kim et al., ICML 2024). Candidates (i, j, dropped) each merge (i, j] into one
convolution after replacing ``dropped`` convolutions by identities:
  f[j, c] = max over candidates (i, j, d) of f[i, c - T(i, j, d)] + I(i, j, d).

Costs are integers (instructions). The budget axis has ``resolution`` steps; each cost is rounded
up to whole steps, so a plan the DP accepts never exceeds the budget, and when the budget has at
most ``resolution`` units (the tests) the DP is exact. ``f`` holds the best importance with cost
*at most* c, so the arrays stay monotone and the optimum is f[L, budget].
"""

import math
from dataclasses import dataclass

import numpy as np

from edgekit.compress.segment import Segment
from edgekit.errors import EdgekitError

DEFAULT_RESOLUTION = 4000


class InfeasibleBudgetError(EdgekitError):
    """No plan meets the budget."""


@dataclass(frozen=True)
class Candidate:
    """A merged segment with its cost (instructions) and importance (higher is better, 0 = harmless)."""

    start: int
    end: int
    cost: int
    importance: float
    dropped: tuple[int, ...] = ()


@dataclass
class Solution:
    segments: list[Segment]
    cost: int  # exact sum of the chosen candidates' costs
    importance: float


def _units(budget: int, resolution: int) -> tuple[int, int]:
    """(unit, budget in units): costs are divided by ``unit`` and rounded up."""
    unit = max(1, math.ceil(budget / resolution))
    return unit, budget // unit


def _knapsack(length: int, items_by_end: dict[int, list], budget_units: int):
    """f[j][c] and the argmax item per (j, c); items are (start, cost_units, value, payload)."""
    best = [np.full(budget_units + 1, -np.inf) for _ in range(length + 1)]
    choice = [np.full(budget_units + 1, -1, dtype=np.int64) for _ in range(length + 1)]
    best[0][:] = 0.0
    for end in range(1, length + 1):
        for index, (start, cost, value, _) in enumerate(items_by_end.get(end, [])):
            if cost > budget_units:
                continue
            candidate = np.full(budget_units + 1, -np.inf)
            candidate[cost:] = best[start][:budget_units + 1 - cost] + value
            better = candidate > best[end]
            best[end][better] = candidate[better]
            choice[end][better] = index
    return best, choice


def _backtrack(items_by_end, choice, length: int, budget_units: int) -> list:
    picked, end, capacity = [], length, budget_units
    while end > 0:
        index = int(choice[end][capacity])
        start, cost, _, payload = items_by_end[end][index]
        picked.append(payload)
        end, capacity = start, capacity - cost
    return picked[::-1]


def _min_cost(length: int, items_by_end: dict[int, list]) -> int | None:
    """The cheapest exact cost of any plan (for the infeasibility message); items carry exact costs."""
    cheapest = [0] + [None] * length
    for end in range(1, length + 1):
        for start, cost in items_by_end.get(end, []):
            if cheapest[start] is not None and (cheapest[end] is None or cheapest[start] + cost < cheapest[end]):
                cheapest[end] = cheapest[start] + cost
    return cheapest[length]


def _infeasible(budget: int, cheapest: int | None, what: str) -> InfeasibleBudgetError:
    if cheapest is None:
        error = InfeasibleBudgetError(f"no valid {what} plan exists (every candidate was filtered out, e.g. by the "
                                      "SRAM limit); raise the SRAM limit or the maximum kernel size")
    else:
        error = InfeasibleBudgetError(f"the budget of {budget:,} instructions is below the cheapest {what} plan "
                                      f"({cheapest:,}); raise --budget")
    error.cheapest = cheapest
    return error


def best_partitions(length: int, cost: dict) -> tuple[dict, dict]:
    """Stage 1: the cheapest merge T_opt of every span, and its last cut (None: one segment)."""
    best_cost: dict[tuple[int, int], int] = {}
    split: dict[tuple[int, int], int | None] = {}
    for span in range(1, length + 1):  # shortest spans first
        for i in range(0, length - span + 1):
            j = i + span
            options = [(cost[(i, j)], None)] if (i, j) in cost else []
            options += [(best_cost[(i, k)] + cost[(k, j)], k) for k in range(i + 1, j)
                        if (i, k) in best_cost and (k, j) in cost]
            if options:
                best_cost[(i, j)], split[(i, j)] = min(options, key=lambda option: option[0])
    return best_cost, split


def solve_dp(length: int, cost: dict, importance: dict, budget: int,
             resolution: int = DEFAULT_RESOLUTION) -> Solution:
    """ICML'23 two-stage DP. ``cost[(i, j)]``: segment cost (missing = not mergeable);
    ``importance[(i, j)]``: span importance (missing = span not allowed)."""
    best_cost, split = best_partitions(length, cost)
    spans = {key: value for key, value in best_cost.items() if key in importance}
    unit, budget_units = _units(budget, resolution)
    items: dict[int, list] = {}
    for (i, j), exact in spans.items():
        items.setdefault(j, []).append((i, math.ceil(exact / unit), importance[(i, j)], (i, j)))
    best, choice = _knapsack(length, items, budget_units)
    if not np.isfinite(best[length][budget_units]):
        exact_items = {}
        for (i, j), exact in spans.items():
            exact_items.setdefault(j, []).append((i, exact))
        raise _infeasible(budget, _min_cost(length, exact_items), "dp")
    segments = []
    for i, j in _backtrack(items, choice, length, budget_units):
        inner = _segments_of_span(split, i, j)
        segments += [Segment(a, b, keep_activation=(b == j)) for a, b in inner]
    total = sum(cost[(s.start, s.end)] for s in segments)
    return Solution(segments, total, float(best[length][budget_units]))


def _segments_of_span(split, i: int, j: int) -> list[tuple[int, int]]:
    k = split[(i, j)]
    return [(i, j)] if k is None else _segments_of_span(split, i, k) + [(k, j)]


def solve_layermerge(length: int, candidates: list[Candidate], budget: int,
                     resolution: int = DEFAULT_RESOLUTION) -> Solution:
    """LayerMerge's one-stage DP over (position, budget)."""
    unit, budget_units = _units(budget, resolution)
    items: dict[int, list] = {}
    for candidate in candidates:
        items.setdefault(candidate.end, []).append(
            (candidate.start, math.ceil(candidate.cost / unit), candidate.importance, candidate))
    best, choice = _knapsack(length, items, budget_units)
    if not np.isfinite(best[length][budget_units]):
        exact_items = {}
        for c in candidates:
            exact_items.setdefault(c.end, []).append((c.start, c.cost))
        raise _infeasible(budget, _min_cost(length, exact_items), "layermerge")
    picked = _backtrack(items, choice, length, budget_units)
    segments = [Segment(c.start, c.end, c.dropped) for c in picked]
    return Solution(segments, sum(c.cost for c in picked), float(best[length][budget_units]))
