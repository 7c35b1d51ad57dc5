"""maximum and minimum: elementwise, with broadcasting.

int8 compares the raw int8 values, as TFLite's MaximumMinimumBroadcastSlow does: the converter gives
both inputs and the output the same quantization, so comparing integers compares the real values.
edgekit's own calibration does not arrange that, so float models with these ops are not quantized.
"""

import numpy as np

from edgekit.ops.elementwise import BinaryOp, lower_broadcast_binary


class _MinMax(BinaryOp):
    int8_unsupported = ("needs both inputs quantized like its output, which edgekit's calibration does not "
                        "arrange; quantize the model with TensorFlow's TFLite converter")

    def run_int8(self, node, graph, inputs):
        return [type(self).float_fn(inputs[0], inputs[1]).astype(np.int8)]


class Maximum(_MinMax):
    name = "maximum"
    float_fn = staticmethod(np.maximum)

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.elementwise_arithmetic import maximum_element

        return lower_broadcast_binary(node, graph, prefix, pointer, maximum_element, None)


class Minimum(_MinMax):
    name = "minimum"
    float_fn = staticmethod(np.minimum)

    def lower(self, node, graph, prefix, pointer, in_place=False):
        from edgekit.codegen.kernels.elementwise_arithmetic import minimum_element

        return lower_broadcast_binary(node, graph, prefix, pointer, minimum_element, None)


MAXIMUM = Maximum()
MINIMUM = Minimum()
