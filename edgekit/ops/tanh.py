"""tanh.

int8 follows TFLite Micro's reference_integer_ops::Tanh: the same Q4.27 input rescaling and
saturation radius as LOGISTIC (:func:`edgekit.ops.logistic.q4_input_params`), gemmlowp's
fixed-point tanh, and rounding to the fixed output quantization (1/128, 0).
"""

import numpy as np

from edgekit.ops.elementwise import UnaryOp
from edgekit.ops.logistic import Q4InputParams, q4_input_params, q4_output
from edgekit.ops.quantize import NoAttrs
from edgekit.fixedpoint import tanh

OUTPUT_SCALE = 1.0 / 128
OUTPUT_ZERO_POINT = 0


def tanh_int8(x, p: Q4InputParams) -> np.ndarray:
    return q4_output(x, p, tanh, 7, OUTPUT_ZERO_POINT)


class Tanh(UnaryOp):
    name = "tanh"
    attrs_type = NoAttrs
    fixed_output_quant = (OUTPUT_SCALE, OUTPUT_ZERO_POINT)

    def run_float(self, attrs, inputs):
        return [np.tanh(inputs[0].astype(np.float64)).astype(np.float32)]

    def run_int8(self, node, graph, inputs):
        return [tanh_int8(inputs[0], q4_input_params(node, graph))]


OP = Tanh()
