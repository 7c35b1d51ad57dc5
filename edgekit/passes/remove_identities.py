"""remove_identities: drop nodes that do not change their input: a reshape to the same shape, a
transpose by the identity permutation, a pad of zero everywhere.

Guard: a node whose input is a graph input and whose output is a graph output is kept (the graph
would lose its only node and the output name).
"""

from edgekit.passes.rewrite import bypass_node


def _is_identity(graph, node) -> bool:
    if node.op == "reshape":
        return tuple(node.attrs.shape) == graph.tensors[node.inputs[0]].shape
    if node.op == "transpose":
        return tuple(node.attrs.perm) == tuple(range(len(node.attrs.perm)))
    if node.op == "pad":
        return all(before == 0 and after == 0 for before, after in node.attrs.pads)
    return False


def remove_identities(graph):
    changed = False
    for node in list(graph.nodes):
        if not _is_identity(graph, node):
            continue
        if node.inputs[0] in graph.inputs and node.output in graph.outputs:
            continue
        bypass_node(graph, node, node.inputs[0])
        changed = True
    return graph, changed
