"""The latency table asks for the kernel variant the code generator gives a layer (no QEMU here)."""

import numpy as np
import pytest

from compress_nets import inverted_residual_chain
from edgekit.codegen.kernels.variants import KernelChoice
from edgekit.codegen.layer_calls import layer_call
from edgekit.ops.conv_params import mac_int8_params
from edgekit.compress.compressor import quantized_network
from edgekit.compress.tables import (KernelForm, backbone_positions, estimated_form, measured_conv_graph,
                                     network_forms)
from edgekit.compress.segment import Segment
from edgekit.target import load_target

M7 = load_target("cortex-m7")
CLAMP_KINDS = {"full": lambda low, high: (low, high) == (-128, 127),  # the int8 ranges of each clamp kind
               "relu": lambda low, high: low > -128 and high == 127, "any": lambda low, high: high < 127}


def generated_kernel(graph, wide_weights):
    """The kernel the code generator emits for the graph's one node."""
    return layer_call(graph.nodes[0], graph, "n0", lambda name: name, KernelChoice(M7, wide_weights)).kernel


@pytest.mark.parametrize("index", [0, 1, 2, 3])  # dense 3x3 stride 2, pointwise, depthwise 3x3, projection
@pytest.mark.parametrize("narrow", [True, False])
@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("clamp", ["full", "relu", "any"])
def test_measured_graph_gets_the_asked_variant(index, narrow, wide, clamp):
    layer = inverted_residual_chain().layers[index]
    graph = measured_conv_graph(layer, KernelForm(narrow, wide, clamp))
    kernel = generated_kernel(graph, wide)
    assert ("_narrow_" in kernel.name) == narrow
    if not layer.depthwise:  # depthwise kernels have no int16-weight variant
        assert kernel.variant == ("dsp_w16" if wide else "dsp")
    params = mac_int8_params(graph.nodes[0], graph, layer.out_channels)
    assert CLAMP_KINDS[clamp](params.act_min, params.act_max)
    assert f"clamp {clamp} " in kernel.c_code


def test_network_forms_follow_the_code_generator():
    chain = inverted_residual_chain()
    calibration = np.random.default_rng(0).random((8, 12, 12, 3)).astype(np.float32)
    graph = quantized_network(chain, calibration)
    forms = network_forms(graph, chain.length, M7)
    convs, tensors = backbone_positions(graph, chain.length)
    assert len(forms.layers) == chain.length and len(forms.ranges) == chain.length + 1
    # the tensor after a residual's last convolution is the add's output
    for residual in chain.residuals:
        producer = next(node for node in graph.nodes if tensors[residual.end] in node.outputs)
        assert producer.op == "add"
    for node, form in zip(convs, forms.layers):
        kernel = layer_call(node, graph, "n", lambda name: name, KernelChoice(M7, forms.wide_weights)).kernel
        assert ("_narrow_" in kernel.name) == form.narrow
        params = mac_int8_params(node, graph, graph.tensors[node.output].shape[-1])
        assert CLAMP_KINDS[form.clamp](params.act_min, params.act_max)
    # a single convolution's estimate is its own form; a merged one is quantized between the end ranges
    assert estimated_form(chain, Segment(2, 3), forms) == forms.layers[2]
    assert estimated_form(chain, Segment(1, 4), forms).wide_weights == forms.wide_weights
