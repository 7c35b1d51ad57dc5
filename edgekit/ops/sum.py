"""sum over any axes (pooling by sum, attention and audio feature heads), keeping the reduced axes
as 1 or dropping them.

int8 follows TFLite Micro's SUM (reduce_common.cc, EvalSumHelper): QuantizedMeanOrSum with
compute_sum, the int32 sum of (x - zp_in) rescaled by input_scale / output_scale (doubles) and
shifted by zp_out, with no 1/count; it runs the mean kernel with that multiplier.
"""

import numpy as np

from edgekit.ops.mean import QuantizedMeanOrSum


class Sum(QuantizedMeanOrSum):
    name = "sum"
    divides_by_count = False

    def run_float(self, attrs, inputs):
        return [inputs[0].sum(axis=tuple(attrs.axes), keepdims=attrs.keep_dims).astype(np.float32)]


OP = Sum()
