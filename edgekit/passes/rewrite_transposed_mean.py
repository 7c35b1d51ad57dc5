"""rewrite_transposed_mean: TRANSPOSE of an NHWC tensor, then MEANs that together reduce its two
spatial axes (PyTorch's global average pool exported to TFLite: a transpose to NCHW, then a mean
over W, then one over H) -> one spatial MEAN of the NHWC tensor, then a reshape to the last
mean's shape.

Float only (in FLOAT_PIPELINE, before convert_mean_to_avg_pool turns the spatial mean into a pool):
a mean of means over equal-sized groups is the overall mean, but in int8 every MEAN rounds, so an
imported int8 graph keeps its MEANs to stay TFLite Micro's bytes.

Guards: a 4-D transpose; each MEAN is the only reader of what it reads; the means reduce exactly
the spatial axes (1, 2) of the transpose's input, nothing else; the result has at most one axis
longer than 1 (the channels), so the reshape keeps the values in order.
"""

from edgekit.ir import Node, Tensor
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.passes.rewrite import sole_consumer

SPATIAL = {1, 2}


def _mean_chain(graph, transpose) -> list:
    """The MEANs after ``transpose`` that reduce the spatial axes of its input, or [] if they do not."""
    origin = list(transpose.attrs.perm)  # axis of the transposed tensor -> axis of the NHWC input
    reduced, chain = set(), []
    node = sole_consumer(graph, transpose.output)
    while node is not None and node.op == "mean" and reduced != SPATIAL:
        axes = {axis % len(origin) for axis in node.attrs.axes}
        reduced |= {origin[axis] for axis in axes}
        if not node.attrs.keep_dims:
            origin = [o for i, o in enumerate(origin) if i not in axes]
        chain.append(node)
        node = sole_consumer(graph, node.output)
    return chain if reduced == SPATIAL else []


def rewrite_transposed_mean(graph):
    changed = False
    for transpose in list(graph.nodes):
        if transpose.op != "transpose" or len(transpose.attrs.perm) != 4 or transpose not in graph.nodes:
            continue
        chain = _mean_chain(graph, transpose)
        final = graph.tensors[chain[-1].output] if chain else None
        if final is None or sum(d > 1 for d in final.shape) > 1:
            continue
        x = graph.tensors[transpose.inputs[0]]
        pooled = graph.unique_name(f"{final.name}_spatial")
        graph.add_tensor(Tensor(pooled, (1, 1, 1, x.shape[3]), x.dtype))
        position = graph.nodes.index(transpose)
        for node in [transpose] + chain:
            graph.nodes.remove(node)
            if node is not chain[-1]:
                graph.tensors.pop(node.output)
        graph.nodes[position:position] = [
            Node(chain[0].name, "mean", [x.name], [pooled], MeanAttrs((1, 2), True)),
            Node(graph.unique_name(f"{chain[-1].name}_reshape"), "reshape", [pooled], [final.name],
                 ReshapeAttrs(tuple(int(d) for d in final.shape))),
        ]
        changed = True
    return graph, changed


