"""reduce_max over any axes (Keras' global max pooling, max over channels), keeping the reduced axes
as 1 or dropping them.

int8 is the largest raw value, as TFLite Micro's REDUCE_MAX computes it: it requires the output to
share the input's quantization (``same_quant_as_input``), where the largest integer is the largest
real value.
"""

import numpy as np

from edgekit.ops.mean import Reduction


class ReduceMax(Reduction):
    name = "reduce_max"
    same_quant_as_input = True

    def run_float(self, attrs, inputs):
        return [inputs[0].max(axis=tuple(attrs.axes), keepdims=attrs.keep_dims).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [inputs[0].max(axis=tuple(node.attrs.axes), keepdims=node.attrs.keep_dims)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.mean import MeanSpec
        from edgekit.codegen.kernels.reduce_max import reduce_max_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        spec = MeanSpec(tuple(int(d) for d in x.shape), tuple(sorted(node.attrs.axes)))
        return kernel_call(node, reduce_max_kernel(spec), {"input": pointer(node.inputs[0]),
                                                           "output": pointer(node.output)})


OP = ReduceMax()
