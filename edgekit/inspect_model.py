"""Per-layer facts about a graph: op, output shape, MACs, parameters and activation bytes."""

from dataclasses import asdict, dataclass

from edgekit.ops import get_op


@dataclass
class LayerInfo:
    node: str
    op: str
    output_shape: tuple
    macs: int
    params: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    output_tensors: list  # the tensors this node writes; reports call them by the node's name


@dataclass
class ModelSummary:
    name: str
    inputs: dict
    outputs: dict
    layers: list[LayerInfo]

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    def to_json(self) -> dict:
        doc = asdict(self)
        doc.update(total_macs=self.total_macs, total_params=self.total_params,
                   total_weight_bytes=self.total_weight_bytes)
        return doc


def summarize(graph) -> ModelSummary:
    layers = []
    for node in graph.nodes:
        ins = [graph.tensors[n] for n in node.inputs]
        outs = [graph.tensors[n] for n in node.outputs]
        constants = [t for t in ins if t.is_constant]
        layers.append(LayerInfo(
            node=node.name, op=node.op, output_shape=outs[0].shape,
            macs=get_op(node.op, node).macs(node.attrs, [t.shape for t in ins], [t.shape for t in outs]),
            params=sum(t.size for t in constants), weight_bytes=sum(t.nbytes for t in constants),
            input_bytes=sum(t.nbytes for t in ins if not t.is_constant), output_bytes=sum(t.nbytes for t in outs),
            output_tensors=list(node.outputs),
        ))

    def describe(names):
        return {n: {"shape": list(graph.tensors[n].shape), "dtype": graph.tensors[n].dtype} for n in names}

    return ModelSummary(graph.name, describe(graph.inputs), describe(graph.outputs), layers)
