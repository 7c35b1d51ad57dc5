"""`edgekit compress`: model + data + target + budget -> a shallower float model as ONNX.

1. the backbone as a chain of convolutions (chain.py); 2. candidates: every segment that merges
exactly (segment.py) with a merged kernel of at most ``max_kernel`` and at most ``max_span``
convolutions, LayerMerge's also with droppable convolutions removed; 3. their cost on the target
(tables.py, measured in QEMU) and SRAM, candidates above the target's SRAM dropped; 4. their
importance (importance.py, fast proxy); 5. the DP (dp.py) at budget x the original's predicted
instructions; 6. distillation fine-tune of the unmerged layout (finetune.py), exact merge (merge.py),
ONNX export (network.py); 7. both models compiled and run in QEMU for the measured numbers.
"""

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgekit.compress.chain import Chain, extract_chain
from edgekit.compress.dp import Candidate, InfeasibleBudgetError, best_partitions, solve_dp, solve_layermerge
from edgekit.compress.importance import HeldOut, ImportanceTable, accuracy_of, span_segments
from edgekit.compress.merge import merge_plan, merged_geometry
from edgekit.compress.network import ChainNetwork, export_onnx
from edgekit.compress.segment import Plan, Segment, segment_problem
from edgekit.compress.tables import LatencyTable, NetworkForms, estimated_form, network_forms, network_instructions, \
    segment_cost
from edgekit.errors import EdgekitError

MODES = ("dp", "layermerge")
MAX_KERNEL = 7
MAX_SPAN = 9
MAX_MAC_GROWTH = 2


@dataclass
class Progress:
    """Callbacks the CLI passes for long steps (each a per-step callable or None)."""

    latency: object = None
    importance: object = None
    finetune: object = None


@dataclass
class ChosenSegment:
    label: str
    kernel: tuple[int, int]
    depthwise: bool
    in_shape: tuple
    out_shape: tuple
    instructions: int
    sram_bytes: int


@dataclass
class CompressResult:
    mode: str
    budget: float
    latency_source: str
    convolutions_before: int
    convolutions_after: int
    segments: list[ChosenSegment]
    plan: list[dict]
    predicted_instructions_before: int
    predicted_instructions_after: int  # the table on the compressed network as compiled (its kernel forms)
    planned_instructions_after: int  # the table on the plan, as the DP saw it before fine-tuning
    predicted_peak_sram_before: int
    predicted_peak_sram_after: int
    accuracy_before: float  # float model, % on the held-out part of DATA
    accuracy_after: float
    held_out_samples: int
    finetune_steps: int
    output: str
    measured: dict = field(default_factory=dict)  # before/after: instructions, peak SRAM, int8 accuracy

    def to_json(self) -> dict:
        doc = dict(self.__dict__)
        doc["segments"] = [s.__dict__ for s in self.segments]
        return doc


def enumerate_segments(chain: Chain, mode: str, max_kernel: int = MAX_KERNEL, max_span: int = MAX_SPAN) -> list[Segment]:
    """Every segment that merges exactly within the limits; LayerMerge adds versions with dropped convolutions."""
    segments = []
    for start in range(chain.length):
        for end in range(start + 1, min(chain.length, start + max_span) + 1):
            droppable = [k for k in range(start + 2, end + 1) if chain.layers[k - 1].droppable] \
                if mode == "layermerge" else []
            for count in range(len(droppable) + 1):
                for dropped in itertools.combinations(droppable, count):
                    segment = Segment(start, end, dropped)
                    if segment_problem(chain, segment, max_kernel) is None:
                        segments.append(segment)
    return segments


@dataclass
class Tables:
    """The latency/SRAM table of every candidate and the constant head cost."""

    costs: dict  # Segment -> tables.Cost
    head_instructions: int
    filtered_by_sram: int

    def cost(self, segment: Segment):
        """The entry of a segment; whether its last activation stays does not change the table's key."""
        return self.costs[replace(segment, keep_activation=True)]

    def instructions(self, segments) -> int:
        return sum(self.cost(s).instructions for s in segments) + self.head_instructions

    def peak_sram(self, segments) -> int:
        return max(self.cost(s).sram_bytes for s in segments)


def build_tables(chain: Chain, segments: list[Segment], table: LatencyTable, sram_limit: int,
                 forms: NetworkForms) -> Tables:
    """Costs of the candidates, each with the kernel form it would get in the network quantized as
    ``forms`` says; merges with more than MAX_MAC_GROWTH x the MACs of their convolutions are not
    measured (cost follows MACs on an MCU, so they can never pay off), nor kept above ``sram_limit``."""
    costs, filtered = {}, 0
    for segment in segments:
        unmerged_macs = sum(chain.layers[k - 1].macs() for k in range(segment.start + 1, segment.end + 1))
        layer = merged_geometry(chain, segment)
        if layer.macs() > MAX_MAC_GROWTH * unmerged_macs:
            continue
        single = segment.end == segment.start + 1
        if not single and np.prod(layer.in_shape) + np.prod(layer.out_shape) > sram_limit:
            filtered += 1  # its input and output alone exceed the SRAM: not worth a measurement
            continue
        form = forms.layers[segment.start] if table.estimate else estimated_form(chain, segment, forms)
        cost = segment_cost(table, chain, segment, form)
        if cost.sram_bytes > sram_limit and not single:
            filtered += 1
            continue
        costs[segment] = cost
    return Tables(costs, table.head_cost(chain, forms.wide_weights).instructions, filtered)


def choose_plan(chain: Chain, tables: Tables, importance: ImportanceTable, mode: str, budget_instructions: int) -> Plan:
    """Run the mode's DP on the tables; only entries cheaper than their unmerged convolutions are scored,
    and (dp) only spans of at most MAX_SPAN convolutions without an activation, the limit of one
    segment: scoring every span of MobileNetV2 (1,223 instead of 277) made the proxy too slow."""
    singles = {k: tables.costs[Segment(k, k + 1)].instructions for k in range(chain.length)}

    def unmerged(start, end):
        return sum(singles[k] for k in range(start, end))

    budget = budget_instructions - tables.head_instructions
    if mode == "dp":
        cost = {(s.start, s.end): c.instructions for s, c in tables.costs.items() if not s.dropped}
        spans = {(i, i + 1): 0.0 for i in range(chain.length)}
        best, _ = best_partitions(chain.length, cost)
        for (i, j), value in best.items():
            if 1 < j - i <= MAX_SPAN and value < unmerged(i, j):
                spans[(i, j)] = importance.importance(span_segments(i, j))
        solution = solve_dp(chain.length, cost, spans, budget)
    else:
        candidates = []
        for segment, c in tables.costs.items():
            single = segment.end == segment.start + 1
            if single or c.instructions < unmerged(segment.start, segment.end):
                candidates.append(Candidate(segment.start, segment.end, c.instructions,
                                            0.0 if single else importance.importance([segment]), segment.dropped))
        solution = solve_layermerge(chain.length, candidates, budget)
    return Plan(solution.segments, mode, {"predicted_importance": solution.importance})


def compress_model(source: str, target_name: str, budget: float, data: str, *, mode: str = "dp", epochs: int = 1,
                   output: str, force: bool = False, resolution=None, width=None, num_classes=None,
                   pretrained: bool | None = None, estimate: bool = False, measure: bool = True, max_kernel: int = MAX_KERNEL,
                   progress: Progress | None = None) -> CompressResult:
    """The whole of `edgekit compress` (see the module doc)."""
    from edgekit import api
    from edgekit.compress.dataset import load_dataset
    from edgekit.compress.finetune import steps_for
    from edgekit.model_source import load_model
    from edgekit.target import load_target

    progress = progress or Progress()
    if mode not in MODES:
        raise EdgekitError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if not 0 < budget <= 1:
        raise EdgekitError(f"--budget {budget}: expected a fraction of the original's instructions in (0, 1]")
    if epochs < 0:
        raise EdgekitError(f"--epochs {epochs}: expected 0 (no fine-tuning) or more")
    api.refuse_overwrite(output, force)
    target = load_target(target_name)
    model = load_model(source, resolution=resolution, width=width, num_classes=num_classes, pretrained=pretrained)
    if model.is_quantized:
        raise EdgekitError(f"{source} is an int8 model; depth compression needs the float model")
    chain = extract_chain(model.graph)
    train, held = load_dataset(data, model.preprocess, model.graph.tensors[model.graph.inputs[0]].shape).split()
    held_out, training = HeldOut.from_arrays(held.x, held.y), HeldOut.from_arrays(train.x, train.y)

    calibration = held.x[:CALIBRATION_SAMPLES]
    forms = network_forms(quantized_network(chain, calibration), chain.length, target)
    latency = LatencyTable(target.name, estimate, progress.latency)
    tables = build_tables(chain, enumerate_segments(chain, mode, max_kernel), latency, target.ram.length, forms)
    identity = Plan.identity(chain)
    before = tables.instructions(identity.segments)
    importance = ImportanceTable(chain, held_out, progress.importance)
    try:
        plan = choose_plan(chain, tables, importance, mode, int(budget * before))
    except InfeasibleBudgetError as error:
        if error.cheapest is None:
            raise
        needed = (error.cheapest + tables.head_instructions) / before
        raise InfeasibleBudgetError(f"--budget {budget}: the cheapest {mode} plan needs {needed:.3f} of the original's "
                                    f"{before:,} instructions; raise --budget to at least {math.ceil(needed * 1000) / 1000}"
                                    ) from None

    steps = steps_for(epochs, len(training.y))
    merged = finetune_and_merge(chain, plan, importance, training, steps, progress=progress.finetune)
    merged_network = ChainNetwork(merged).float()

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.with_name(f".{output.name}.tmp")
    export_onnx(merged, staged)
    staged.replace(output)

    result = CompressResult(
        mode=mode, budget=budget,
        latency_source="measured in QEMU" if not estimate else "estimate: MACs x 8 (no QEMU measurement)",
        convolutions_before=chain.length, convolutions_after=merged.length,
        segments=[_chosen(chain, s, tables) for s in plan.segments], plan=plan.to_json(),
        predicted_instructions_before=before,
        predicted_instructions_after=0,
        planned_instructions_after=tables.instructions(plan.segments),
        predicted_peak_sram_before=tables.peak_sram(identity.segments),
        predicted_peak_sram_after=tables.peak_sram(plan.segments),
        accuracy_before=accuracy_of(importance.original, held_out), accuracy_after=accuracy_of(merged_network, held_out),
        held_out_samples=len(held.y), finetune_steps=steps, output=str(output))
    if measure:
        result.measured = {"before": measure_model(chain, target.name, held, latency=latency),
                           "after": measure_model(merged, target.name, held, latency=latency)}
        result.predicted_instructions_after = result.measured["after"]["predicted_instructions"]
    else:
        merged_forms = network_forms(quantized_network(merged, calibration), merged.length, target)
        result.predicted_instructions_after = network_instructions(latency, merged, merged_forms)
    return result


def finetune_and_merge(chain: Chain, plan: Plan, importance: ImportanceTable, training: HeldOut, steps: int,
                       seed: int = 0, progress=None) -> Chain:
    """The plan's unmerged layout, batch norms re-estimated at every changed segment, distilled from the
    original for ``steps`` mini-batches, then merged exactly."""
    from edgekit.compress.finetune import distill_steps
    from edgekit.compress.importance import reestimate

    student = ChainNetwork(chain, plan).float()
    for segment in plan.segments:
        if segment.end > segment.start + 1 or not segment.keep_activation:
            reestimate(student, importance.original, segment.convs[-1], importance.calibration)
    distill_steps(student, importance.original, training, steps, progress, seed=seed)
    return merge_plan(student.to_chain(), plan)


def _chosen(chain: Chain, segment: Segment, tables: Tables) -> ChosenSegment:
    layer = merged_geometry(chain, segment)
    cost = tables.cost(segment)
    return ChosenSegment(segment.label(), layer.kernel, layer.depthwise, layer.in_shape, layer.out_shape,
                         cost.instructions, cost.sram_bytes)


CALIBRATION_SAMPLES = 16
MEASURE_SAMPLES = 2


def quantized_network(chain: Chain, calibration: np.ndarray):
    """The int8 graph `edgekit compile` makes of ``chain`` calibrated on ``calibration`` (NHWC float):
    the same ONNX export, import and quantization as ``measure_model``'s compile."""
    from edgekit import api
    from edgekit.model_source import load_model
    from edgekit.scratch import scratch_folder

    with scratch_folder("compress") as folder:
        export_onnx(chain, folder / "model.onnx")
        np.save(folder / "calib.npy", calibration)
        model = load_model(str(folder / "model.onnx"), calib=str(folder / "calib.npy"))
        return api.quantize(model, str(folder / "calib.npy")).model.graph


def measure_model(chain: Chain, target: str, held, workdir: Path | None = None, accuracy_on=None,
                  latency: LatencyTable | None = None) -> dict:
    """Compile ``chain`` (exported as ONNX, calibrated on held-out samples) for the target and run it in
    QEMU: measured instructions per inference, peak SRAM, bit-exactness; with ``accuracy_on`` (x, y) also
    the int8 accuracy in percent by the exact integer interpreter (which the firmware matches bit for bit);
    with ``latency`` also the table's prediction for this compiled network (its layers' kernel forms)."""
    from edgekit.compiler import compile_model
    from edgekit.ir.serialize import load_graph
    from edgekit.runner import run_build

    from edgekit.scratch import scratch_folder

    with scratch_folder("compress") as temporary:
        folder = Path(workdir or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(chain, folder / "model.onnx")
        np.save(folder / "calib.npy", held.x[:CALIBRATION_SAMPLES])
        np.save(folder / "run.npy", held.x[:MEASURE_SAMPLES])
        build = compile_model(str(folder / "model.onnx"), target, calib=str(folder / "calib.npy"),
                              output=folder / "build", force=True).build_dir
        run = run_build(build, str(folder / "run.npy"))
        doc = {"instructions": run.instructions_per_inference, "peak_sram_bytes": run.peak_sram_bytes,
               "arena_bytes": run.arena_bytes, "flash_bytes": run.flash_bytes, "bit_exact": run.bit_exact}
        int8 = load_graph(build / "model.ek")
        if accuracy_on is not None:
            doc["int8_accuracy"] = int8_accuracy(int8, *accuracy_on)
        if latency is not None:
            from edgekit.target import load_target

            forms = network_forms(int8, chain.length, load_target(target))
            doc["predicted_instructions"] = network_instructions(latency, chain, forms)
    return doc


def int8_accuracy(graph, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent of an int8 graph on float inputs x (NHWC), by the integer interpreter."""
    from edgekit.ir.interpreter import run_graph

    quant = graph.tensors[graph.inputs[0]].quant
    correct = sum(int(np.argmax(run_graph(graph, [quant.quantize(x[i:i + 1])], mode="int8")[graph.outputs[0]])
                      == y[i]) for i in range(len(y)))
    return 100.0 * correct / len(y)
