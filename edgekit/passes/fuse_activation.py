"""fuse_activation: op (conv, depthwise conv, fully connected, add, pooling) followed by a ReLU/ReLU6
clamp -> the op with ``attrs.activation`` set.

Guards: the op has no activation yet (relu after relu6 is left alone) and its output has no other
reader. A clamp after any other op stays a standalone clamp node.
"""

from edgekit.passes.rewrite import bypass_node, sole_consumer

FUSABLE = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d"}


def fuse_activation(graph):
    changed = False
    for producer in list(graph.nodes):
        if producer.op not in FUSABLE or producer.attrs.activation is not None:
            continue
        clamp = sole_consumer(graph, producer.output)
        if clamp is None or clamp.op != "clamp":
            continue
        producer.attrs.activation = clamp.attrs.activation
        bypass_node(graph, clamp, producer.output)
        changed = True
    return graph, changed
