"""maximum and minimum: elementwise, with broadcasting.

int8 compares the raw int8 values, as TFLite's MaximumMinimumBroadcastSlow does: the converter gives
both inputs and the output the same quantization, so comparing integers compares the real values.
edgekit's quantizer does the same (``same_quant_inputs``): an input quantized otherwise is first
requantized by an int8 -> int8 QUANTIZE, a constant operand is quantized with the output's parameters.
"""

import numpy as np

from edgekit.ops.elementwise import BinaryOp


def _raw(compare):
    def int8_reference(a, b):
        return compare(a, b).astype(np.int8)
    return staticmethod(int8_reference)


class _MinMax(BinaryOp):
    same_quant_inputs = True


class Maximum(_MinMax):
    name = "maximum"
    float_fn = staticmethod(np.maximum)
    int8_reference = _raw(np.maximum)


class Minimum(_MinMax):
    name = "minimum"
    float_fn = staticmethod(np.minimum)
    int8_reference = _raw(np.minimum)


MAXIMUM = Maximum()
MINIMUM = Minimum()
