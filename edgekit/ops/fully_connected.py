"""fully_connected: input [1, K], filter [N, K], optional bias [N], fused activation."""

from dataclasses import dataclass

import numpy as np

from edgekit.ops.conv_params import (MacOp, bias_or_zeros, bias_rule, finish_float,
                                     finish_int8, mac_int8_params)


@dataclass
class FullyConnectedAttrs:
    activation: str | None = None


def fully_connected_int8(x, filt, bias, mult, shift, *, input_offset, output_offset, act_min, act_max):
    """TFLite reference_integer_ops::FullyConnected (filter offset 0) on [1, K] int8 input."""
    acc = (x.astype(np.float64) + input_offset) @ filt.astype(np.float64).T
    return finish_int8(acc, bias, mult, shift, output_offset, act_min, act_max)


def constraint_weights_match_input(attrs, in_shapes) -> tuple[bool, str]:
    """The weights are (outputs, inputs), with as many inputs as the input tensor has values."""
    x, w = in_shapes[0], in_shapes[1]
    ok = len(in_shapes) in (2, 3) and len(w) == 2 and int(np.prod(x)) == w[1]
    return ok, f"input {list(x)}, weights {list(w)}"


class FullyConnected(MacOp):
    name = "fully_connected"
    attrs_type = FullyConnectedAttrs
    weight_channel_axis = 0  # NK
    constraints = (constraint_weights_match_input, bias_rule(0))
    kernel_variants = True

    def infer_shapes(self, attrs, in_shapes):
        return [(1, in_shapes[1][0])]

    def run_float(self, attrs, inputs):
        acc = inputs[0].astype(np.float64).reshape(1, -1) @ inputs[1].astype(np.float64).T
        return [finish_float(acc, inputs, attrs.activation)]

    def run_int8(self, node, graph, inputs):
        w = inputs[1]
        p = mac_int8_params(node, graph, w.shape[0])
        bias = bias_or_zeros(graph, node, w.shape[0], np.int32)
        return [fully_connected_int8(inputs[0].reshape(1, -1), w, bias, p.multiplier, p.shift,
                                     input_offset=p.input_offset, output_offset=p.output_offset,
                                     act_min=p.act_min, act_max=p.act_max)]

    def macs(self, attrs, in_shapes, out_shapes):
        return int(in_shapes[1][0] * in_shapes[1][1])

    def expected_output_error(self, weight_error, input_mean):
        return weight_error @ input_mean

    def lower(self, node, graph, prefix, pointer, in_place=False, *, kernels):
        from edgekit.codegen.kernels.fully_connected import FullyConnectedSpec
        from edgekit.codegen.layer_calls import mac_call

        w = graph.tensors[node.inputs[1]]
        spec = FullyConnectedSpec(w.shape[1], w.shape[0])
        return mac_call(node, graph, "fully_connected", spec, kernels, prefix, pointer, w.shape[0])


OP = FullyConnected()
