"""convert_mean_to_avg_pool: a global mean over H and W kept as [1,1,1,C] -> avg_pool2d over the whole
plane.

Both compute the same float value, and int8 average pooling needs no rescaling (TFLite keeps its
input's quantization), so the quantized model needs one kernel fewer. A mean without keep_dims gets
an avg_pool2d followed by a reshape to [1, C].
"""

from edgekit.ir import Node, Tensor
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.reshape import ReshapeAttrs


def convert_mean_to_avg_pool(graph):
    changed = False
    for index, node in enumerate(list(graph.nodes)):
        if node.op != "mean":
            continue
        _, h, w, c = graph.tensors[node.inputs[0]].shape
        pool_attrs = Pool2dAttrs(kernel=(h, w), stride=(h, w), padding=(0, 0, 0, 0))
        position = graph.nodes.index(node)
        if node.attrs.keep_dims:
            graph.nodes[position] = Node(node.name, "avg_pool2d", node.inputs, node.outputs, pool_attrs)
        else:
            pooled = graph.unique_name(f"{node.output}_pooled")
            graph.add_tensor(Tensor(pooled, (1, 1, 1, c), graph.tensors[node.output].dtype))
            graph.nodes[position:position + 1] = [
                Node(node.name, "avg_pool2d", node.inputs, [pooled], pool_attrs),
                Node(graph.unique_name(f"{node.name}_reshape"), "reshape", [pooled], node.outputs,
                     ReshapeAttrs((1, c))),
            ]
        changed = True
    return graph, changed
