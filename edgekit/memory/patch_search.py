"""Description: choose where to split, into how many patches, in which order and with which
in-place writes (MCUNetV2's search, extended), or build the schedule the user named with
``--patch SPLIT:N``.

1. Candidates: every node output that can end a patch stage (``stage_problem`` finds nothing: only
   spatial ops up to it, and a cut of the DAG, so in a residual block the split comes after the
   add) and is at least 2x2. n runs from 2 to min(max_n, H, W) of the split tensor.
2. For each (split, n): plan the stage's regions once (``plan_stage``); its MAC overhead, taken over
   the whole network ((patched stage MACs - layer-by-layer stage MACs) / network MACs), is the same
   for every order and in-place choice, so it is computed once. A candidate over the bound is
   infeasible; more patches only recompute more halo, so the first one of each split (the
   cheapest plan the bound rules out, kept for the report) ends that split's n.
3. The patch order (``PATCH_ORDERS``) only decides how early frame rows die, i.e. how far the split
   tensor may reach into the frame (``patch_memory.frame_accesses``): the order with the largest
   shift is kept without planning the others (with input by patch there is no frame: row-major).
4. Plan the memory of the whole schedule (``plan_patch_memory``) with and without in-place row-wise
   writes, and keep the smaller arena + scratch (in-place depthwise planes, outside the arena).
5. Keep the feasible candidate with the smallest arena + scratch (then the smaller overhead, then
   fewer patches), but only if it beats layer by layer with no patches. That baseline is
   ``plan_memory`` of the whole graph with the in-place choices that need the least SRAM.
Candidates are planned unchecked; the kept plan is planned again and checked (``verify_plan``).

With ``fit_bytes`` (``--patch fit``) the goal is to fit a budget with the least recomputation
instead: a candidate is feasible when its peak is at most ``fit_bytes``, whatever its overhead
(every n is tried). Layer by layer wins when it fits (it recomputes nothing); else the feasible
candidate with the least MAC overhead (then the smaller peak); when nothing fits, the smallest
peak, layer by layer included.
"""

from dataclasses import asdict, dataclass

from edgekit.ir import Graph
from edgekit.inspect_model import summarize
from edgekit.memory.patch_memory import PatchMemory, frame_accesses, plan_patch_memory
from edgekit.memory.patch_stage import (PATCH_ORDERS, PatchStage, PatchStageError, plan_stage, resolve_split,
                                        stage_problem)
from edgekit.memory.plan import MemoryPlan, plan_memory
from edgekit.memory.streaming import max_shift


@dataclass(frozen=True)
class PatchCandidate:
    """One (split, n) the search tried: its peak, its MAC overheads, whether it met the bound, and
    the order, in-place choice and scratch of its best plan."""

    split: str
    n: int
    peak_bytes: int
    stage_mac_overhead: float
    mac_overhead: float
    feasible: bool
    order: str = "row-major"
    inplace_rows: bool = False
    scratch_bytes: int = 0

    @property
    def sram_bytes(self) -> int:
        """Arena + scratch: what the search minimises."""
        return self.peak_bytes + self.scratch_bytes


@dataclass
class PatchSchedule:
    """A patched schedule: the stage's geometry, the memory of both phases, and the MAC cost."""

    stage: PatchStage
    memory: PatchMemory
    network_macs: int
    inplace_rows: bool = True
    #: run the scratch-lean kernels (``codegen.kernels.variants.KernelChoice.lean``): a schedule that
    #: minimises SRAM (--patch auto, SPLIT:N); one that only has to fit (--patch fit) keeps the faster ones
    lean_kernels: bool = True

    @property
    def extra_macs(self) -> int:
        """MACs recomputed in patch halos."""
        return self.stage.patched_macs - self.stage.layer_macs

    @property
    def mac_overhead(self) -> float:
        """Recomputed MACs over the network's layer-by-layer MACs (0.1 = 10% more work)."""
        return self.extra_macs / self.network_macs if self.network_macs else 0.0

    def candidate(self, max_mac_overhead: float, fit_bytes: int | None = None) -> PatchCandidate:
        """This schedule as a search candidate; feasible: within the MAC bound, or with ``fit_bytes``
        (--patch fit) within that activation budget."""
        feasible = (self.mac_overhead <= max_mac_overhead if fit_bytes is None
                    else self.memory.peak_bytes <= fit_bytes)
        return PatchCandidate(self.stage.split, self.stage.n, self.memory.peak_bytes, self.stage.mac_overhead,
                              self.mac_overhead, feasible, self.stage.order, self.inplace_rows,
                              self.memory.scratch_bytes)

    def to_json(self) -> dict:
        """The numbers a report shows; ``peak_step`` names the tensors that make the peak."""
        graph = self.stage.graph
        peak = self.memory.peak_step
        return {
            "split": self.stage.split,
            "split_node": graph.nodes.index(graph.producer(self.stage.split)),
            "split_shape": list(graph.tensors[self.stage.split].shape),
            "patches": self.stage.n,
            "order": self.stage.order,
            "inplace_rows": self.inplace_rows,
            "frame_reuse_bytes": self.memory.frame_reuse_bytes,
            "input_by_patch": self.memory.input_by_patch,
            "activation_peak_bytes": self.memory.peak_bytes,
            "scratch_bytes": self.memory.scratch_bytes,
            "stage_bytes": self.memory.stage_bytes,
            "patch_working_bytes": self.memory.working.arena_bytes,
            "rest_bytes": self.memory.rest_bytes,
            "mac_overhead": self.mac_overhead,
            "stage_mac_overhead": self.stage.mac_overhead,
            "network_macs": self.network_macs,
            "extra_macs": self.extra_macs,
            "peak_step": {"phase": peak.phase, "node": peak.node, "live_bytes": peak.live_bytes,
                          "tensors": list(peak.tensors)},
        }


@dataclass
class PatchSearch:
    """The search's answer: ``chosen`` is None when layer by layer (``baseline``) is the better plan.

    ``fit_bytes`` is None for ``--patch auto`` (feasible = MAC overhead within ``max_mac_overhead``)
    and the activation budget for ``--patch fit`` (feasible = peak within it)."""

    chosen: PatchSchedule | None
    baseline: MemoryPlan
    candidates: list[PatchCandidate]
    max_mac_overhead: float
    fit_bytes: int | None = None

    @property
    def peak_bytes(self) -> int:
        return self.chosen.memory.peak_bytes if self.chosen else self.baseline.arena_bytes

    @property
    def fits(self) -> bool:
        """For --patch fit: whether the chosen plan (or layer by layer) is within ``fit_bytes``."""
        return self.fit_bytes is not None and self.peak_bytes <= self.fit_bytes

    def to_json(self) -> dict:
        return {
            "goal": "auto" if self.fit_bytes is None else "fit",
            "max_mac_overhead": self.max_mac_overhead,
            "fit_bytes": self.fit_bytes,
            "baseline_bytes": self.baseline.arena_bytes,
            "chosen": self.chosen.to_json() if self.chosen else None,
            "candidates": [asdict(candidate) for candidate in self.candidates],
        }


def split_candidates(graph: Graph) -> list[str]:
    """Every node output that can end a patch stage and can be cut into at least 2x2 patches."""
    return [node.output for node in graph.nodes
            if len(graph.tensors[node.output].shape) == 4 and min(graph.tensors[node.output].shape[1:3]) >= 2
            and stage_problem(graph, node.output) is None]


def layer_by_layer_plan(graph: Graph, alignment: int = 16, inplace_depthwise: bool = True) -> MemoryPlan:
    """The no-patch baseline: plan_memory with and without in-place depthwise (if allowed) and in-place
    row-wise writes, the one with the least arena + scratch."""
    plans = [plan_memory(graph, alignment, inplace_depthwise=depthwise, inplace_rows=rows)
             for depthwise in dict.fromkeys((False, inplace_depthwise)) for rows in (False, True)]
    return min(plans, key=lambda plan: plan.arena_bytes + plan.scratch_bytes)


def best_order(stage: PatchStage, input_by_patch: bool) -> PatchStage:
    """The stage in the order whose frame rows die soonest for the split tensor (see the module doc)."""
    if input_by_patch:
        return stage
    orders = [stage.in_order(order) for order in PATCH_ORDERS]
    return max(orders, key=lambda ordered: max_shift(frame_accesses(ordered)(None, None)[0]))


def plan_schedule_memory(stage: PatchStage, network_macs: int, input_by_patch: bool, alignment: int,
                         inplace_depthwise: bool, verify: bool = True) -> PatchSchedule:
    """The stage's schedule with the in-place choice that needs the least arena + scratch."""
    schedules = [PatchSchedule(stage, plan_patch_memory(stage, input_by_patch, alignment, inplace_depthwise, rows,
                                                        verify=verify), network_macs, rows)
                 for rows in (True, False)]
    return min(schedules, key=lambda schedule: schedule.memory.sram_bytes)


def search_patch_plan(graph: Graph, max_mac_overhead: float = 0.20, input_by_patch: bool = False,
                      candidates: list[str | int] | None = None, max_n: int = 8, alignment: int = 16,
                      inplace_depthwise: bool = True, fit_bytes: int | None = None) -> PatchSearch:
    """The patched schedule with the least arena + scratch whose MAC overhead is at most
    ``max_mac_overhead``, or with ``fit_bytes`` the one with the least MAC overhead that fits (see the
    module doc); ``candidates`` restricts the split tensors (names or node indices)."""
    splits = split_candidates(graph) if candidates is None else [resolve_split(graph, c) for c in candidates]
    network_macs = summarize(graph).total_macs
    rank = _rank if fit_bytes is None else _fit_rank
    tried: list[PatchCandidate] = []
    best: PatchSchedule | None = None
    for split in splits:
        for n in range(2, min(max_n, *graph.tensors[split].shape[1:3]) + 1):
            stage = plan_stage(graph, split, n)
            schedule = plan_schedule_memory(best_order(stage, input_by_patch), network_macs, input_by_patch,
                                            alignment, inplace_depthwise, verify=False)
            candidate = schedule.candidate(max_mac_overhead, fit_bytes)
            tried.append(candidate)
            if (candidate.feasible or fit_bytes is not None) and (
                    best is None or rank(candidate) < rank(best.candidate(max_mac_overhead, fit_bytes))):
                best = schedule
            if fit_bytes is None and not candidate.feasible:
                break  # more patches recompute more halo: the cheapest plan over the bound is enough
    baseline = layer_by_layer_plan(graph, alignment, inplace_depthwise)
    if best is not None and (best.memory.sram_bytes >= baseline.arena_bytes + baseline.scratch_bytes or
                             fit_bytes is not None and baseline.arena_bytes <= fit_bytes):
        best = None
    if best is not None:  # plan the kept schedule again, checked
        best = PatchSchedule(best.stage, plan_patch_memory(best.stage, input_by_patch, alignment, inplace_depthwise,
                                                           best.inplace_rows), network_macs, best.inplace_rows)
    return PatchSearch(best, baseline, tried, max_mac_overhead, fit_bytes)


def _rank(candidate: PatchCandidate) -> tuple:
    return candidate.sram_bytes, candidate.mac_overhead, candidate.n


def _fit_rank(candidate: PatchCandidate) -> tuple:
    """--patch fit: any plan that fits beats any that does not; among those that fit the least MAC
    overhead wins, among those that do not the smallest peak."""
    if candidate.feasible:
        return 0, candidate.mac_overhead, candidate.peak_bytes, candidate.n
    return 1, candidate.peak_bytes, candidate.mac_overhead, candidate.n


def split_blocker(graph: Graph, plan: MemoryPlan) -> str | None:
    """Why no patch stage can end at the layer-by-layer peak (the first rule broken there, which
    names the node that blocks it), or None when it can."""
    return stage_problem(graph, graph.nodes[plan.peak_step.step].output)


def build_patch_plan(graph: Graph, spec: str, input_by_patch: bool = False, alignment: int = 16,
                     inplace_depthwise: bool = True) -> PatchSchedule:
    """The schedule named by ``--patch SPLIT:N[:ORDER]``: SPLIT is a tensor name or a node index, N the
    patch count per side, ORDER one of ``PATCH_ORDERS`` (default: the best for the frame)."""
    order = None
    head, colon, tail = spec.rpartition(":")
    if colon and tail in PATCH_ORDERS:
        spec, order = head, tail
    split_spec, colon, n_text = spec.rpartition(":")
    if not colon or not n_text.isdigit():
        raise PatchStageError(f"--patch {spec!r}: expected SPLIT:N, e.g. 12:4 (node 12's output, 4x4 patches)")
    stage = plan_stage(graph, resolve_split(graph, split_spec), int(n_text))
    stage = best_order(stage, input_by_patch) if order is None else stage.in_order(order)
    return plan_schedule_memory(stage, summarize(graph).total_macs, input_by_patch, alignment, inplace_depthwise)
