"""absorb_input_transpose: a graph input read only by a TRANSPOSE from NCHW to NHWC -> the graph
input is the NHWC tensor.

Models exported from PyTorch take NCHW images and begin with this transpose. As a node it copies
the whole frame and blocks every patch split (a patch stage must start at the input); absorbed, the
frame is NHWC, as a camera writes it, and the first convolutions can run on patches. The model's
contract for its users stays NCHW: edgekit's input loaders (samples.py) take the NCHW arrays that
TFLite Micro is fed and transpose them once, and an image folder is read as NHWC anyway. Only the
firmware's input record is NHWC (model.h says so in EK_INPUT_SIZE's comment).

Guards: the input is 4-D, the transpose's permutation is (0, 2, 3, 1), it is the input's only
reader, and the graph has one input.
"""

from edgekit.passes.rewrite import sole_consumer

NCHW_TO_NHWC = (0, 2, 3, 1)


def absorb_input_transpose(graph):
    if len(graph.inputs) != 1 or len(graph.tensors[graph.inputs[0]].shape) != 4:
        return graph, False
    transpose = sole_consumer(graph, graph.inputs[0])
    if transpose is None or transpose.op != "transpose" or tuple(transpose.attrs.perm) != NCHW_TO_NHWC:
        return graph, False
    graph.tensors.pop(graph.inputs[0])
    graph.nodes.remove(transpose)
    graph.inputs = [transpose.output]
    return graph, True
