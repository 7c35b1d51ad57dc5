"""The one shared rewrite primitive: remove a node and let its output be another tensor."""


def bypass_node(graph, node, replacement: str) -> None:
    """Delete ``node`` and make every use of its output (and the graph outputs) use ``replacement``."""
    old = node.output
    graph.nodes.remove(node)
    for other in graph.nodes:
        other.inputs = [replacement if name == old else name for name in other.inputs]
    graph.outputs = [replacement if name == old else name for name in graph.outputs]
    if old != replacement:
        graph.tensors.pop(old, None)


def sole_consumer(graph, tensor_name: str):
    """The only node reading ``tensor_name``, or None if it has several readers or is a graph output."""
    consumers = graph.consumers(tensor_name)
    if len(consumers) != 1 or tensor_name in graph.outputs:
        return None
    return consumers[0]
