"""Description: the patch stage of MCUNetV2 patch-based inference on a DAG: for every patch, the
region of every stage tensor that must be computed, and the window and padding of every node.

The stage is every node from the graph input up to and including the producer of the split tensor,
in schedule order. It must be a cut of the DAG (``constraint_*`` below): afterwards only the split
tensor is read, because the other stage tensors only ever exist one patch at a time. The split
tensor's rows and columns are each cut into n near-equal contiguous ranges (``split_ranges``), which
gives n x n tiles; patch (i, j) computes tile (i, j) of the split tensor.

Per patch, regions are propagated backwards over the stage in reverse schedule order, so every
consumer of a tensor is visited before its producer:

1. The split tensor's region is the tile.
2. A node computes all of its output's region. ``SpatialLayer.window`` (per axis, from the kernel,
   stride, dilation and padding of the op's ``window``) gives the input indices that this reads, padding included; the
   node's input region is that window clipped to the input tensor, and its per-side ``padding`` is
   how far the window reaches past the tensor (``LayerWindow``).
3. A tensor's region is the bounding box, per axis, of the input regions of all its consumers: a
   residual add and the expand conv of an inverted residual block both read the block input, and
   the block input must cover both.

Unlike ``plan_patches`` (exact index sets on a chain), regions here are boxes, because a union of
the needs of several consumers is not a product of a row set and a column set. Every pixel of a
box reads only pixels of its input box or padding that lies outside the tensor, so every pixel a
patch computes equals the layer-by-layer value: a kernel run on the cropped input with the patch's
padding (zero point, or left out of an average) is bit-exact on its whole output box.

Degenerate patches, where a window lies entirely in padding (a pad node or a large padding on a
thin tile), give empty input regions. An empty region adds nothing to a bounding box, a node whose
output region is empty computes nothing on that patch, and a kernel with an empty input and
padding reads only padding, as the full layer does at those pixels.

Pointwise and elementwise nodes (1x1 conv, add, clamp) pass regions through; neighbouring patches
overlap in the halos of 3x3 and strided layers, which is the recomputation ``mac_overhead`` counts.
"""

from dataclasses import dataclass, field, replace

from edgekit.errors import EdgekitError
from edgekit.ir import Graph, Node
from edgekit.memory.patch_window import LayerWindow, Region, SpatialLayer, split_ranges
from edgekit.ops import OPS, get_op
from edgekit.ops.base import rule_text


class PatchStageError(EdgekitError):
    """A split tensor or patch count that patch-based inference cannot use."""


def activation_inputs(graph: Graph, node: Node) -> list[str]:
    """The inputs of ``node`` that are activations (not weights or biases)."""
    return [name for name in node.inputs if not graph.tensors[name].is_constant]


def _stage(graph: Graph, split: str) -> list[Node]:
    producer = graph.producer(split)
    return graph.nodes[: graph.nodes.index(producer) + 1]


# Each constraint returns (ok, detail); its docstring is the rule the user sees.

def constraint_one_input(graph: Graph, split: str) -> tuple[bool, str]:
    """The graph must have exactly one input: the frame the patches are cut from."""
    return len(graph.inputs) == 1, f"the graph has inputs {graph.inputs}"


def constraint_split_is_produced(graph: Graph, split: str) -> tuple[bool, str]:
    """The split tensor must be the output of a node, not the graph input or a constant."""
    return split in graph.tensors and graph.producer(split) is not None, f"tensor {split!r} has no producer"


def constraint_spatial_ops(graph: Graph, split: str) -> tuple[bool, str]:
    """Every node of the patch stage must be an op that runs on spatial patches (``edgekit ops`` lists
    them); split earlier so that other ops run layer by layer."""
    for node in _stage(graph, split):
        op = get_op(node.op, node)
        if not op.patchable:
            patchable = ", ".join(sorted(name for name, other in OPS.items() if other.patchable))
            return False, f"node {node.name} is a {node.op}; ops that run on patches: {patchable}"
        for constraint in op.patch_constraints:
            ok, detail = constraint(node, graph)
            if not ok:
                return False, f"node {node.name}: {rule_text(constraint)} ({detail})"
    return True, ""


def constraint_cut(graph: Graph, split: str) -> tuple[bool, str]:
    """Nothing after the patch stage may read a stage tensor other than the split tensor, and no
    other stage tensor may be a graph output: those exist one patch at a time. In a residual block
    this means splitting after the add."""
    stage = _stage(graph, split)
    internal = {name for node in stage for name in node.outputs} | set(graph.inputs)
    internal.discard(split)
    for node in graph.nodes[len(stage):]:
        for name in node.inputs:
            if name in internal:
                return False, f"node {node.name} after the stage reads stage tensor {name!r}"
    for name in graph.outputs:
        if name in internal:
            return False, f"graph output {name!r} is inside the stage"
    return True, ""


def constraint_feeds_split(graph: Graph, split: str) -> tuple[bool, str]:
    """Every node of the patch stage must feed the split tensor, and the stage must read the graph
    input; a side branch would never be computed."""
    needed = {split}
    for node in reversed(_stage(graph, split)):
        if node.output not in needed:
            return False, f"node {node.name} does not feed {split!r}"
        needed.update(activation_inputs(graph, node))
    return graph.inputs[0] in needed, f"the stage does not read the graph input {graph.inputs[0]!r}"


#: In the order they are checked; later ones assume the earlier ones hold.
CONSTRAINTS = (constraint_one_input, constraint_split_is_produced, constraint_spatial_ops, constraint_cut,
               constraint_feeds_split)


def stage_problem(graph: Graph, split: str) -> str | None:
    """Why ``split`` cannot end a patch stage (the first rule broken and the detail), or None."""
    for constraint in CONSTRAINTS:
        ok, detail = constraint(graph, split)
        if not ok:
            return f"cannot split at {split!r}: {rule_text(constraint)} ({detail})"
    return None


def resolve_split(graph: Graph, spec: str | int) -> str:
    """A split given as a tensor name, as the name of the node that writes it (what reports show), or
    as that node's index."""
    if isinstance(spec, str) and spec in graph.tensors:
        return spec
    named = [node for node in graph.nodes if node.name == spec and len(node.outputs) == 1]
    if named:
        return named[0].output
    if isinstance(spec, int) or spec.isdigit():
        index = int(spec)
        if 0 <= index < len(graph.nodes):
            return graph.nodes[index].output
        raise PatchStageError(f"node index {index} is out of range; the graph has {len(graph.nodes)} nodes")
    raise PatchStageError(f"{spec!r} is neither a node name, a tensor name nor a node index; "
                          "use `edgekit inspect` to list the nodes")


def spatial_layer(graph: Graph, node: Node) -> SpatialLayer:
    """The window geometry of a stage node; ``macs_per_pixel`` makes output area * it the op's MACs."""
    op = get_op(node.op, node)
    window = op.window(node, graph)
    in_shape = graph.tensors[node.inputs[0]].shape
    out_shape = graph.tensors[node.output].shape
    macs = op.macs(node.attrs, [graph.tensors[name].shape for name in node.inputs], [out_shape])
    return SpatialLayer(tuple(in_shape[1:3]), window,
                        in_channels=in_shape[3], out_channels=out_shape[3],
                        macs_per_pixel=macs // (out_shape[1] * out_shape[2]), name=node.name)


@dataclass(frozen=True)
class StagePatch:
    """One patch: ``regions`` of every stage activation (the stage input, each node output, and the
    split tensor's tile) and, per node name, the ``LayerWindow`` it runs with: it computes
    ``output`` (= its output tensor's region) from ``input`` padded by ``padding``. Each activation
    input ``t`` of the node holds ``regions[t]``, which contains ``input``."""

    index: tuple[int, int]
    regions: dict[str, Region]
    windows: dict[str, LayerWindow]


#: The orders the firmware may run the n x n patches in (``patch_order``).
PATCH_ORDERS = ("row-major", "serpentine", "column-major")


def patch_order(n: int, order: str) -> list[tuple[int, int]]:
    """(row, col) of the n x n patches in the order they run: ``row-major``; ``serpentine`` (row-major,
    every other row right to left); ``column-major``. The order changes no MAC and no result, only
    which bytes of the frame are dead when (see ``patch_memory``)."""
    if order == "row-major":
        return [(i, j) for i in range(n) for j in range(n)]
    if order == "serpentine":
        return [(i, j if i % 2 == 0 else n - 1 - j) for i in range(n) for j in range(n)]
    if order == "column-major":
        return [(i, j) for j in range(n) for i in range(n)]
    raise PatchStageError(f"unknown patch order {order!r}; choose one of {', '.join(PATCH_ORDERS)}")


@dataclass(frozen=True)
class PatchStage:
    """The geometry of running the stage that ends at ``split`` on n x n patches, in ``order``."""

    graph: Graph = field(repr=False, compare=False)
    split: str
    n: int
    nodes: tuple[Node, ...] = field(repr=False)
    layers: dict[str, SpatialLayer] = field(repr=False)
    patches: tuple[StagePatch, ...] = field(repr=False)
    order: str = "row-major"

    def in_order(self, order: str) -> "PatchStage":
        """The same stage with its patches run in ``order`` (geometry and MACs are reused)."""
        by_index = {patch.index: patch for patch in self.patches}
        return replace(self, patches=tuple(by_index[index] for index in patch_order(self.n, order)), order=order)

    @property
    def input(self) -> str:
        return self.graph.inputs[0]

    @property
    def tensors(self) -> list[str]:
        """Stage activations in schedule order: the input, then every node's output."""
        return [self.input] + [node.output for node in self.nodes]

    def largest_region(self, tensor: str) -> Region:
        """The region of ``tensor`` with the largest area over all patches (what its buffer must hold)."""
        return max((patch.regions[tensor] for patch in self.patches), key=lambda region: region.area)

    def patch_node(self, patch: StagePatch, node: Node) -> Node:
        """``node`` with the attrs it runs with on ``patch``: its padding replaced by the patch's."""
        attrs = get_op(node.op, node).with_padding(node.attrs, patch.windows[node.name].padding)
        return replace(node, attrs=attrs)

    @property
    def layer_macs(self) -> int:
        """MACs of the stage run layer by layer."""
        return sum(layer.out_hw[0] * layer.out_hw[1] * layer.macs_per_pixel for layer in self.layers.values())

    @property
    def patched_macs(self) -> int:
        """MACs of the stage run patch by patch, recomputed halo pixels included."""
        return sum(window.output.area * self.layers[name].macs_per_pixel
                   for patch in self.patches for name, window in patch.windows.items())

    @property
    def mac_overhead(self) -> float:
        """Extra MACs of patching over the stage's layer-by-layer MACs (0.1 = 10% more)."""
        return self.patched_macs / self.layer_macs - 1.0 if self.layer_macs else 0.0


def stage_nodes(graph: Graph, split: str) -> list[Node]:
    """The nodes of the stage that ends at ``split``; PatchStageError when it is not a valid stage."""
    problem = stage_problem(graph, split)
    if problem is not None:
        raise PatchStageError(problem)
    return _stage(graph, split)


def plan_stage(graph: Graph, split: str, n: int, order: str = "row-major") -> PatchStage:
    """Regions and windows of every patch of an n x n split at tensor ``split`` (see the module doc),
    the patches in ``order``."""
    nodes = stage_nodes(graph, split)
    layers = {node.name: spatial_layer(graph, node) for node in nodes}
    height, width = graph.tensors[split].shape[1:3]
    if not 1 <= n <= min(height, width):
        raise PatchStageError(f"cannot cut the {height}x{width} split tensor {split!r} into {n}x{n} patches; "
                              f"choose n from 1 to {min(height, width)}")
    rows, cols = split_ranges(height, n), split_ranges(width, n)
    patches = tuple(_plan_patch(graph, nodes, layers, (i, j), Region(rows[i], cols[j])) for i, j in patch_order(n, order))
    return PatchStage(graph, split, n, tuple(nodes), layers, patches, order)


def _plan_patch(graph: Graph, nodes: list[Node], layers: dict[str, SpatialLayer], index: tuple[int, int],
                tile: Region) -> StagePatch:
    regions = {nodes[-1].output: tile}
    windows = {}
    for node in reversed(nodes):
        layer = layers[node.name]
        output = regions[node.output]
        window = layer.window(output)
        needed = window.clipped(layer.in_hw)
        windows[node.name] = LayerWindow(output, window, needed)
        for name in activation_inputs(graph, node):
            regions[name] = regions[name].union(needed) if name in regions else needed
    return StagePatch(index, regions, dict(reversed(windows.items())))


def rest_graph(graph: Graph, split: str) -> Graph:
    """The layer-by-layer part after the stage: the nodes after the split's producer, with the split
    tensor as its input. Tensors are shared with ``graph``, not copied."""
    stage = stage_nodes(graph, split)
    rest = Graph(name=f"{graph.name}_after_patches", tensors=dict(graph.tensors),
                 nodes=list(graph.nodes[len(stage):]), inputs=[split], outputs=list(graph.outputs))
    rest.remove_unused_tensors()
    return rest

