"""fuse_activation: an op that ``fuses_activation`` (conv, depthwise conv, fully connected, add, pooling)
followed by a ReLU/ReLU6 clamp -> the op with ``attrs.activation`` set.

Guards: the op has no activation yet (relu after relu6 is left alone) and its output has no other
reader. A clamp after any other op stays a standalone clamp node.
"""

from edgekit.ops import get_op
from edgekit.passes.rewrite import bypass_node, sole_consumer


def fuse_activation(graph):
    changed = False
    for producer in list(graph.nodes):
        if not get_op(producer.op, producer).fuses_activation or producer.attrs.activation is not None:
            continue
        clamp = sole_consumer(graph, producer.output)
        if clamp is None or clamp.op != "clamp":
            continue
        producer.attrs.activation = clamp.attrs.activation
        bypass_node(graph, clamp, producer.output)
        changed = True
    return graph, changed
