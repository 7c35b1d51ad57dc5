"""maximum and minimum: elementwise, with broadcasting.

int8 compares the raw int8 values, as TFLite's MaximumMinimumBroadcastSlow does: the converter gives
both inputs and the output the same quantization, so comparing integers compares the real values.
"""

import numpy as np

from edgekit.ops.elementwise import BinaryOp


class _MinMax(BinaryOp):
    def run_int8(self, node, graph, inputs):
        return [type(self).float_fn(inputs[0], inputs[1]).astype(np.int8)]


class Maximum(_MinMax):
    name = "maximum"
    float_fn = staticmethod(np.maximum)


class Minimum(_MinMax):
    name = "minimum"
    float_fn = staticmethod(np.minimum)


MAXIMUM = Maximum()
MINIMUM = Minimum()
