"""reduce_max and reduce_min over any axes (Keras' global max pooling, max over channels), keeping
the reduced axes as 1 or dropping them.

int8 is the largest (smallest) raw value, as TFLite Micro's REDUCE_MAX and REDUCE_MIN compute it:
they require the output to share the input's quantization (``same_quant_as_input``), where the
largest integer is the largest real value.
"""

import numpy as np

from edgekit.ops.mean import Reduction


class ReduceExtreme(Reduction):
    """The largest (reduce_max) or smallest (reduce_min) value over ``attrs.axes``."""

    same_quant_as_input = True
    pick = None  # np.max or np.min

    def run_float(self, attrs, inputs):
        return [type(self).pick(inputs[0], axis=tuple(attrs.axes), keepdims=attrs.keep_dims).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [type(self).pick(inputs[0], axis=tuple(node.attrs.axes), keepdims=node.attrs.keep_dims)]

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.mean import MeanSpec
        from edgekit.codegen.kernels.reduce_max import reduce_max_kernel
        from edgekit.codegen.layer_calls import kernel_call

        x = graph.tensors[node.inputs[0]]
        spec = MeanSpec(tuple(int(d) for d in x.shape), tuple(sorted(node.attrs.axes)))
        return kernel_call(node, reduce_max_kernel(spec, self.name), {"input": pointer(node.inputs[0]),
                                                           "output": pointer(node.output)})


class ReduceMax(ReduceExtreme):
    name = "reduce_max"
    pick = staticmethod(np.max)


class ReduceMin(ReduceExtreme):
    name = "reduce_min"
    pick = staticmethod(np.min)


REDUCE_MAX = ReduceMax()
REDUCE_MIN = ReduceMin()
