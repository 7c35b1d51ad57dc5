"""The latency table T and the memory beside it: what each merged candidate costs on the target.

T of a candidate is the instruction count of its merged int8 convolution (plus the residual add
that follows it when the skip is not folded), measured in QEMU: a one-layer graph with the merged
shape is quantized, compiled by edgekit's code generator for the target, run, and its layer's
instructions read from the instruction-counting plugin. Entries are cached on disk
($EDGEKIT_HOME/compress/latency.json) keyed by target, shapes and the kernel version (a hash of the
code generator and firmware sources and TVM's version), so faster kernels are re-measured.
``estimate`` counts MACs x INSTRUCTIONS_PER_MAC instead (and says so): a fallback without a toolchain.

SRAM of a candidate: int8 input + output + kernel scratch (measured arena) + a skip tensor that
stays live across it; flash: its int8 weights and int32 bias.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache

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


def conv_graph(layer: ConvLayer, seed: int = 0) -> Graph:
    """A float graph holding one convolution of the layer's shapes (random weights: counts don't depend on them)."""
    from edgekit.ops.conv2d import Conv2dAttrs
    from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs

    rng = np.random.default_rng(seed)
    graph = Graph("candidate")
    height, width, channels = layer.in_shape
    graph.add_tensor(Tensor("x", (1, height, width, channels)))
    shape = (1,) + layer.weight.shape if layer.depthwise else layer.weight.shape
    graph.add_tensor(Tensor("w", shape, data=(rng.standard_normal(shape) * 0.1).astype(np.float32)))
    graph.add_tensor(Tensor("b", (layer.out_channels,), data=np.zeros(layer.out_channels, np.float32)))
    graph.add_tensor(Tensor("y", (1,) + tuple(layer.out_shape)))
    if layer.depthwise:
        attrs = DepthwiseConv2dAttrs(stride=layer.stride, padding=layer.padding, activation=layer.activation)
    else:
        attrs = Conv2dAttrs(stride=layer.stride, padding=layer.padding, activation=layer.activation)
    graph.nodes.append(Node("conv", "depthwise_conv2d" if layer.depthwise else "conv2d", ["x", "w", "b"], ["y"], attrs))
    graph.inputs, graph.outputs = ["x"], ["y"]
    return graph


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

    def graph_cost(self, signature, make_graph, macs: int, weight_bytes: int, io_bytes: int) -> Cost:
        if self.estimate:
            return Cost(INSTRUCTIONS_PER_MAC * macs, io_bytes, weight_bytes, False)
        key = self._key(signature)
        if key not in self.entries:
            self.entries[key] = measure_graph(make_graph(), self.target)
            self.measurements += 1
            self._save()
            if self.progress:
                self.progress()
        entry = self.entries[key]
        return Cost(entry["instructions"], entry["arena_bytes"], entry["weight_bytes"], True)

    def layer_cost(self, layer: ConvLayer) -> Cost:
        in_bytes = int(np.prod(layer.in_shape))
        out_bytes = int(np.prod(layer.out_shape))
        weights = layer.weight.size + 4 * layer.out_channels
        return self.graph_cost(layer_signature(layer), lambda: conv_graph(layer), layer.macs(), weights,
                               in_bytes + out_bytes)

    def add_cost(self, shape) -> Cost:
        size = int(np.prod(shape))
        return self.graph_cost(("add", tuple(shape)), lambda: add_graph(shape), size // INSTRUCTIONS_PER_MAC, 0,
                               2 * size)

    def head_cost(self, chain: Chain) -> Cost:
        """The part after the backbone (pooling, classifier): the same for every plan."""
        from edgekit.inspect_model import summarize

        head = chain.head
        macs = summarize(head).total_macs
        signature = ("head", repr([(n.op, n.attrs) for n in head.nodes]),
                     repr([(t.name, t.shape) for t in head.tensors.values()]))
        return self.graph_cost(signature, lambda: head, macs, 0, 0)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.entries, indent=0))
        temporary.replace(self.path)


def measure_graph(graph: Graph, target: str) -> dict:
    """Compile a float graph for ``target`` (synthetic calibration), run it once in QEMU, read the counts."""
    from edgekit.compiler import compile_model
    from edgekit.ir.serialize import save_graph
    from edgekit.runner import run_build

    from edgekit.scratch import scratch_folder

    with scratch_folder("latency") as folder:
        source = folder / "candidate.ek"
        save_graph(graph, source)
        result = compile_model(str(source), target, output=folder / "build")
        run = run_build(result.build_dir)
    weights = result.manifest["weights"]
    return {"instructions": int(sum(run.layer_instructions)), "arena_bytes": int(run.arena_bytes),
            "weight_bytes": int(weights["internal_bytes"] + weights["external_bytes"])}


def segment_cost(table: LatencyTable, chain: Chain, segment: Segment) -> Cost:
    """Cost of the merged segment: its convolution, plus the residual add after it when not folded;
    SRAM adds any skip tensor that stays live while it runs."""
    layer = merged_geometry(chain, segment)
    cost = table.layer_cost(layer)
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
