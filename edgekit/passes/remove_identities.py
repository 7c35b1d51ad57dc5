"""remove_identities: drop nodes that do not change their input (their op's ``is_identity``): a reshape
to the same shape, a transpose by the identity permutation, a pad of zero everywhere.

Guard: a node whose input is a graph input and whose output is a graph output is kept (the graph
would lose its only node and the output name).
"""

from edgekit.ops import get_op
from edgekit.passes.rewrite import bypass_node


def remove_identities(graph):
    changed = False
    for node in list(graph.nodes):
        if not get_op(node.op, node).is_identity(node, graph):
            continue
        if node.inputs[0] in graph.inputs and node.output in graph.outputs:
            continue
        bypass_node(graph, node, node.inputs[0])
        changed = True
    return graph, changed
