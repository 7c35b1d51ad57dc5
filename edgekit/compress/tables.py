"""The latency table T and the memory beside it: what each merged candidate costs on the target.

T of a candidate is the instruction count of its merged int8 convolution (plus the residual add
that follows it when the skip is not folded), measured in QEMU: a one-layer graph with the merged
shape is quantized, compiled by edgekit's code generator for the target, run, and its layer's
instructions read from the instruction-counting plugin. Entries are cached on disk
($EDGEKIT_HOME/compress/latency.json) keyed by target, shapes and the kernel version (a hash of the
code generator and firmware sources and TVM's version), so faster kernels are re-measured.
``estimate`` counts MACs x INSTRUCTIONS_PER_MAC instead (and says so): a fallback without a toolchain.

The code generator picks a layer's kernel variant from more than its shape (``KernelForm``): the
DSP kernels requantize in a narrow form when the layer's calibrated scales and bias allow it, use
int16 weights where the layer's widened weights fit the flash (``codegen.wide_weights``), and compile
in what they may assume of the activation clamp (``mac_dsp.clamp_kind``: none over all of int8, as a
ReLU6 calibrated to [0, 6] gets, a ReLU's lower bound at the zero point, or any). So an entry is keyed
by that form too, and the one-layer graph is quantized so that it gets exactly the form asked for
(checked with the code generator's own test). The form of each layer of a network comes from the
network's int8 graph (``network_forms``); a candidate's before the network exists is estimated from
the calibrated ranges at its two ends (``estimated_form``).

SRAM of a candidate: int8 input + output + kernel scratch (measured arena) + a skip tensor that
stays live across it; flash: its int8 weights and int32 bias.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekit.compress.chain import Chain, ConvLayer
from edgekit.compress.merge import merged_geometry, segment_layout
from edgekit.compress.segment import Segment
from edgekit.ir import Graph
from edgekit.ir.graph import Node
from edgekit.ir.tensor import Tensor
from edgekit.paths import FIRMWARE_DIR, REPO_ROOT, writable_cache_dir

INSTRUCTIONS_PER_MAC = 8  # the naive TVM schedule (README, "Tests and benchmarks"); estimate only
CACHE_FILE = "latency.json"


@dataclass(frozen=True)
class Cost:
    instructions: int
    sram_bytes: int
    flash_bytes: int
    measured: bool  # False: the MAC-based estimate


@dataclass(frozen=True)
class KernelForm:
    """What the variant of a MAC layer's kernel depends on besides its shape (see the module doc)."""

    narrow: bool = True  # the layer passes ``layer_calls.requantizes_narrow``
    wide_weights: bool = True  # int16 weights (``codegen.wide_weights.wide_weight_layers``)
    clamp: str = "full"  # ``mac_dsp.clamp_kind`` of its activation clamp

    def key(self) -> str:
        return f"narrow={int(self.narrow)} wide={int(self.wide_weights)} clamp={self.clamp}"


@lru_cache(maxsize=1)
def kernel_version() -> str:
    """Hash of what decides a kernel's instruction count: the code generator, the firmware runtime, TVM."""
    import tvm

    digest = hashlib.sha256(tvm.__version__.encode())
    sources = sorted((REPO_ROOT / "edgekit" / "codegen").rglob("*.py")) + sorted(FIRMWARE_DIR.rglob("*.[ch]"))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def layer_signature(layer: ConvLayer) -> tuple:
    return ("depthwise" if layer.depthwise else "conv2d", layer.in_shape, layer.out_channels, layer.kernel,
            layer.stride, layer.padding, layer.activation)


def conv_graph(layer: ConvLayer, seed: int | None = 0) -> Graph:
    """A float graph holding one convolution of the layer's shapes: random weights and zero bias
    (instruction counts do not depend on them), or with ``seed`` None the layer's own."""
    from edgekit.ops.conv2d import Conv2dAttrs
    from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs

    graph = Graph("candidate")
    height, width, channels = layer.in_shape
    graph.add_tensor(Tensor("x", (1, height, width, channels)))
    shape = (1,) + layer.weight.shape if layer.depthwise else layer.weight.shape
    if seed is None:
        weight, bias = np.asarray(layer.weight).reshape(shape), layer.bias
    else:
        weight, bias = np.random.default_rng(seed).standard_normal(shape) * 0.1, np.zeros(layer.out_channels)
    graph.add_tensor(Tensor("w", shape, data=weight.astype(np.float32)))
    graph.add_tensor(Tensor("b", (layer.out_channels,), data=np.asarray(bias, np.float32)))
    graph.add_tensor(Tensor("y", (1,) + tuple(layer.out_shape)))
    if layer.depthwise:
        attrs = DepthwiseConv2dAttrs(stride=layer.stride, padding=layer.padding, activation=layer.activation)
    else:
        attrs = Conv2dAttrs(stride=layer.stride, padding=layer.padding, activation=layer.activation)
    graph.nodes.append(Node("conv", "depthwise_conv2d" if layer.depthwise else "conv2d", ["x", "w", "b"], ["y"], attrs))
    graph.inputs, graph.outputs = ["x"], ["y"]
    return graph


def int8_graph(graph: Graph, ranges: dict) -> Graph:
    """``graph`` quantized by the int8 scheme with the given float range of every activation."""
    from edgekit.quantize.convert import quantize_graph
    from edgekit.quantize.scheme import load_scheme

    return quantize_graph(graph, ranges, load_scheme("int8"))


CLAMP_OUTPUT_RANGES = {"full": (0.0, 6.0), "relu": (-4.0, 6.0), "any": (-4.0, 8.0)}


def kernel_form(graph: Graph, node, wide_weights: bool) -> KernelForm:
    """The form the code generator gives the int8 MAC ``node`` of ``graph``."""
    from edgekit.codegen.kernels.mac_dsp import clamp_kind
    from edgekit.codegen.layer_calls import requantizes_narrow
    from edgekit.ops.conv_params import mac_int8_params

    out_channels = graph.tensors[node.output].shape[-1]
    params = mac_int8_params(node, graph, out_channels)
    return KernelForm(requantizes_narrow(node, graph, out_channels), wide_weights,
                      clamp_kind(params.act_min, params.act_max, params.output_offset))


def measured_conv_graph(layer: ConvLayer, form: KernelForm) -> Graph:
    """The int8 one-convolution graph the table measures for ``form``. The input range sets every
    channel's rescale far below 0.5 (narrow) or above it; the output range sets the clamp kind: any
    activation over [0, 6] spans all of int8, a ReLU6 over [-4, 6] clamps below only, at the zero point
    (``relu``), over [-4, 8] on both sides (a layer measured for a clamp it does not have gets a ReLU6
    for it; ``upper``, a lower clamp off the zero point, has no entries)."""
    if form.clamp != "full":
        layer = replace(layer, activation="relu6")
    ranges = {"x": (-1.0, 1.0) if form.narrow else (-1e4, 1e4), "y": CLAMP_OUTPUT_RANGES[form.clamp]}
    graph = int8_graph(conv_graph(layer), ranges)
    if kernel_form(graph, graph.nodes[0], form.wide_weights) != form:
        raise RuntimeError(f"latency table: the measured graph of {layer_signature(layer)} does not get "
                           f"{form.key()}; this is a bug")
    return graph


def quant_range(quant) -> tuple[float, float]:
    """The float range an int8 per-tensor quantization covers."""
    scale, zero_point = float(quant.scalar_scale), int(quant.scalar_zero_point)
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def backbone_positions(graph: Graph, length: int) -> tuple[list, list[str]]:
    """The first ``length`` convolution nodes of a graph read by ``extract_chain`` and the tensor at
    each chain position 0..length (a residual add's output where one follows the convolution)."""
    from edgekit.compress.chain import CONV_OPS

    convs, tensors = [], [graph.inputs[0]]
    for node in graph.nodes:
        if node.op in CONV_OPS and len(convs) < length:
            convs.append(node)
            tensors.append(node.output)
        elif node.op == "add" and tensors[-1] in node.inputs:
            tensors[-1] = node.output
        elif len(convs) == length:
            break
    return convs, tensors


@dataclass
class NetworkForms:
    """The kernel form of each backbone convolution of a quantized network, and the calibrated
    range at each chain position (what candidates' forms are estimated from)."""

    layers: list[KernelForm]
    ranges: list[tuple[float, float]]
    wide_weights: bool


def network_forms(graph: Graph, length: int, target) -> NetworkForms:
    """The forms the code generator gives the int8 ``graph`` (the network as it will be compiled)."""
    from edgekit.codegen.wide_weights import wide_weight_layers

    wide = wide_weight_layers(graph, target)
    convs, tensors = backbone_positions(graph, length)
    return NetworkForms([kernel_form(graph, node, node.name in wide) for node in convs],
                        [quant_range(graph.tensors[name].quant) for name in tensors],
                        all(node.name in wide for node in convs))


def estimated_form(chain: Chain, segment: Segment, forms: NetworkForms) -> KernelForm:
    """The form of a merged candidate: its exact merged weights quantized between the original network's
    calibrated ranges at the segment's two ends (the fine-tuned network may still differ a little)."""
    from edgekit.compress.merge import merge_segment

    if segment.end == segment.start + 1 and not segment.dropped:
        return forms.layers[segment.start]
    graph = int8_graph(conv_graph(merge_segment(chain, segment), seed=None),
                       {"x": forms.ranges[segment.start], "y": forms.ranges[segment.end]})
    return kernel_form(graph, graph.nodes[0], forms.wide_weights)


def add_graph(shape: tuple) -> Graph:
    from edgekit.ops.add import AddAttrs

    graph = Graph("residual_add")
    graph.add_tensor(Tensor("x", (1,) + tuple(shape)))
    graph.add_tensor(Tensor("y", (1,) + tuple(shape)))
    graph.nodes.append(Node("add", "add", ["x", "x"], ["y"], AddAttrs()))
    graph.inputs, graph.outputs = ["x"], ["y"]
    return graph


class LatencyTable:
    """Measured (or estimated) costs of graphs on one target, cached on disk."""

    def __init__(self, target: str, estimate: bool = False, progress=None):
        self.target = target
        self.estimate = estimate
        self.progress = progress
        self.path = writable_cache_dir() / "compress" / CACHE_FILE
        self.entries = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.measurements = 0

    def _key(self, signature) -> str:
        return json.dumps([self.target, kernel_version(), list(map(str, signature))])

    def graph_cost(self, signature, make_graph, macs: int, weight_bytes: int, io_bytes: int,
                   wide_weights: bool = True) -> Cost:
        if self.estimate:
            return Cost(INSTRUCTIONS_PER_MAC * macs, io_bytes, weight_bytes, False)
        key = self._key(signature)
        if key not in self.entries:
            self.entries[key] = measure_graph(make_graph(), self.target, wide_weights)
            self.measurements += 1
            self._save()
            if self.progress:
                self.progress()
        entry = self.entries[key]
        return Cost(entry["instructions"], entry["arena_bytes"], entry["weight_bytes"], True)

    def layer_cost(self, layer: ConvLayer, form: KernelForm = KernelForm()) -> Cost:
        in_bytes = int(np.prod(layer.in_shape))
        out_bytes = int(np.prod(layer.out_shape))
        weights = layer.weight.size + 4 * layer.out_channels
        return self.graph_cost(layer_signature(layer) + (form.key(),), lambda: measured_conv_graph(layer, form),
                               layer.macs(), weights, in_bytes + out_bytes, form.wide_weights)

    def add_cost(self, shape) -> Cost:
        size = int(np.prod(shape))
        return self.graph_cost(("add", tuple(shape)), lambda: add_graph(shape), size // INSTRUCTIONS_PER_MAC, 0,
                               2 * size)

    def head_cost(self, chain: Chain, wide_weights: bool = True) -> Cost:
        """The part after the backbone (pooling, classifier): the same for every plan."""
        from edgekit.inspect_model import summarize

        head = chain.head
        macs = summarize(head).total_macs
        signature = ("head", repr([(n.op, n.attrs) for n in head.nodes]),
                     repr([(t.name, t.shape) for t in head.tensors.values()]), f"wide={int(wide_weights)}")
        return self.graph_cost(signature, lambda: head, macs, 0, 0, wide_weights)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.entries, indent=0))
        temporary.replace(self.path)


ROOMY_RAM_BYTES = 3 * 1024 * 1024  # within the data RAM of the QEMU machines the CPUs run on


def roomy_target_file(target: str, folder: Path) -> Path:
    """A board file for ``target``'s board (a CPU's default board) with ROOMY_RAM_BYTES of SRAM: the same
    CPU on the same QEMU machine, so a layer too big to run layer by layer on the target is still
    counted (the compiled network runs such layers patched, so the table is not additive there)."""
    from edgekit.target import BOARDS_DIR, list_targets, load_cpu

    board = load_cpu(target).default_board if target in list_targets() else target
    blocks = (BOARDS_DIR / f"{board}.toml").read_text().split("[[memory]]")
    blocks[0] = re.sub(r'(?m)^name = ".*"$', f'name = "{board}-roomy"', blocks[0], count=1)
    blocks = [re.sub(r"(?m)^length = .*$", f"length = {ROOMY_RAM_BYTES}", block) if 'role = "ram"' in block
              else block for block in blocks]
    path = folder / f"{board}-roomy.toml"
    path.write_text("[[memory]]".join(blocks))
    return path


def measure_graph(graph: Graph, target: str, wide_weights: bool = True) -> dict:
    """Compile a graph for ``target`` (a float one with synthetic calibration) with or without the
    int16-weight kernels, run it once in QEMU, read the counts; a graph that does not fit the target's
    SRAM layer by layer is counted on a roomy copy of its board (``roomy_target_file``)."""
    from edgekit.compiler import compile_model
    from edgekit.errors import DoesNotFitError
    from edgekit.ir.serialize import save_graph
    from edgekit.runner import run_build

    from edgekit.scratch import scratch_folder

    with scratch_folder("latency") as folder:
        source = folder / "candidate.ek"
        save_graph(graph, source)
        try:
            result = compile_model(str(source), target, output=folder / "build", wide_weights=wide_weights)
        except DoesNotFitError:
            result = compile_model(str(source), None, target_file=roomy_target_file(target, folder),
                                   output=folder / "build", force=True, patch="off", wide_weights=wide_weights)
        run = run_build(result.build_dir)
    weights = result.manifest["weights"]
    return {"instructions": int(sum(run.layer_instructions)), "arena_bytes": int(run.arena_bytes),
            "weight_bytes": int(weights["internal_bytes"] + weights["external_bytes"])}


def segment_cost(table: LatencyTable, chain: Chain, segment: Segment, form: KernelForm = KernelForm()) -> Cost:
    """Cost of the merged segment with its kernel ``form``: its convolution, plus the residual add after
    it when not folded; SRAM adds any skip tensor that stays live while it runs."""
    layer = merged_geometry(chain, segment)
    cost = table.layer_cost(layer, form)
    instructions, sram = cost.instructions, cost.sram_bytes
    residual = chain.residual_ending_at(segment.end)
    if residual is not None and residual not in segment_layout(chain, segment).folded:
        add = table.add_cost(layer.out_shape)
        instructions += add.instructions
        sram = max(sram, add.sram_bytes + int(np.prod(layer.out_shape)))
    for residual in chain.residuals:
        if residual.start < segment.start and segment.end <= residual.end:
            sram += int(np.prod(chain.shape_at(residual.start)))
    return Cost(instructions, sram, cost.flash_bytes, cost.measured)


def network_instructions(table: LatencyTable, chain: Chain, forms: NetworkForms) -> int:
    """The table's prediction for the whole network ``chain`` quantized as ``forms`` says: every
    convolution (and unfolded add) with the form it gets, plus the head."""
    from edgekit.compress.segment import Plan

    costs = [segment_cost(table, chain, s, forms.layers[s.start]) for s in Plan.identity(chain).segments]
    return sum(c.instructions for c in costs) + table.head_cost(chain, forms.wide_weights).instructions
