"""fold_batchnorm: conv/depthwise conv (an op that ``folds_batch_norm``) followed by batch_norm -> one conv
with scaled weights and bias, along the filter's output-channel axis (``weight_channel_axis``).

w' = w * gamma / sqrt(var + eps) per output channel; b' = (b - mean) * gamma / sqrt(var + eps) + beta.
Guards: the conv's output must have no other reader (else both values are needed), and the conv
must have no fused activation yet (bn(relu(conv)) is not a conv). A filter that another node also
reads is copied before scaling, so the other reader keeps the original.
"""

import numpy as np

from edgekit.ir import Tensor
from edgekit.ops import get_op
from edgekit.passes.rewrite import bypass_node, sole_consumer


def fold_batchnorm(graph):
    changed = False
    for conv in list(graph.nodes):
        op = get_op(conv.op, conv)
        if not op.folds_batch_norm or conv.attrs.activation is not None:
            continue
        bn = sole_consumer(graph, conv.output)
        if bn is None or bn.op != "batch_norm":
            continue
        gamma, beta, mean, var = (graph.tensors[n].data.astype(np.float64) for n in bn.inputs[1:])
        factor = gamma / np.sqrt(var + bn.attrs.epsilon)
        weight = graph.tensors[conv.inputs[1]]
        if len(graph.consumers(weight.name)) > 1:  # tied weights: fold into a copy
            weight = graph.add_tensor(Tensor(graph.unique_name(f"{conv.output}_weight"), weight.shape,
                                             weight.dtype, weight.data))
            conv.inputs = [conv.inputs[0], weight.name] + conv.inputs[2:]
        shape = [1] * weight.data.ndim
        shape[op.weight_channel_axis] = -1
        weight.data = (weight.data * factor.reshape(shape)).astype(np.float32)
        bias = graph.tensors[conv.inputs[2]].data if len(conv.inputs) > 2 else np.zeros_like(factor)
        new_bias = ((bias - mean) * factor + beta).astype(np.float32)
        bias_name = graph.unique_name(f"{conv.output}_bias")
        graph.add_tensor(Tensor(bias_name, new_bias.shape, "float32", new_bias))
        conv.inputs = conv.inputs[:2] + [bias_name]
        graph.tensors[conv.output].shape = graph.tensors[bn.output].shape
        bypass_node(graph, bn, conv.output)
        changed = True
    if changed:
        graph.remove_unused_tensors()
    return graph, changed
