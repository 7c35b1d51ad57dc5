"""Every TVM kernel family, emitted by edgekit's code generator into real firmware (arm-none-eabi-gcc),
run in the real QEMU, equals the integer reference interpreter byte for byte.

Each case is a small int8 Graph (one kernel node, plus a 1x1 conv feeding add's second operand or a
reshape feeding fully_connected) with seeded random shapes, per-channel weight quantization and
random activation quantization, planned with plan_memory and emitted with emit_program.
"""

import numpy as np
import pytest

from edgekit.build import build_firmware
from edgekit.codegen.program import emit_program
from edgekit.emulate import run_firmware
from edgekit.ir.graph import Graph, Node
from edgekit.ir.interpreter import run_graph
from edgekit.ir.tensor import QuantParams, Tensor
from edgekit.memory import plan_memory
from edgekit.ops.add import AddAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.window import output_hw, same_padding
from edgekit.target import load_target

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

INPUTS = 3


class Builder:
    """A seeded int8 graph under construction: random activation and per-channel weight quantization."""

    def __init__(self, seed: int, in_shape):
        self.rng = np.random.default_rng(seed)
        self.graph = Graph(name=f"kernels{seed}")
        self.count = 0
        x = self.activation("x", in_shape)
        self.graph.inputs = [x.name]

    def activation(self, name, shape, quant=None) -> Tensor:
        if quant is None:
            quant = QuantParams.per_tensor(float(10 ** self.rng.uniform(-2.5, -0.5)), int(self.rng.integers(-100, 100)))
        return self.graph.add_tensor(Tensor(name, shape, "int8", quant=quant))

    def _weights(self, name, shape, axis, fan_in, in_scale):
        channels = shape[axis]
        w_scale = (10 ** self.rng.uniform(-3, -1.5, size=channels)).astype(np.float32)
        w = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        weight = self.graph.add_tensor(Tensor(f"{name}_w", shape, "int8", w, QuantParams(w_scale, np.zeros(channels), axis)))
        b_scale = (np.float64(in_scale) * w_scale.astype(np.float64)).astype(np.float32)
        b = self.rng.integers(-(1 << 14), 1 << 14, size=channels).astype(np.int32)
        bias = self.graph.add_tensor(Tensor(f"{name}_b", (channels,), "int32", b, QuantParams(b_scale, np.zeros(channels), 0)))
        # an output scale that spreads the accumulators over the int8 range without saturating all of it
        spread = np.sqrt(fan_in) * 74.0 * 74.0 * in_scale * float(np.median(w_scale))
        out_scale = spread / (40.0 * self.rng.uniform(0.5, 2.0))
        return weight, bias, out_scale

    def node(self, op, inputs, out_shape, attrs, out_quant) -> str:
        self.count += 1
        name = f"{op}{self.count}"
        out = self.activation(f"{name}_out", out_shape, out_quant)
        self.graph.nodes.append(Node(name, op, list(inputs), [out.name], attrs))
        return out.name

    def quant(self, name) -> QuantParams:
        return self.graph.tensors[name].quant

    def mac(self, op, x, w_shape, axis, fan_in, out_shape, attrs) -> str:
        in_scale = self.quant(x).scalar_scale
        weight, bias, out_scale = self._weights(f"{op}{self.count + 1}", w_shape, axis, fan_in, in_scale)
        out_quant = QuantParams.per_tensor(out_scale, int(self.rng.integers(-60, 60)))
        return self.node(op, [x, weight.name, bias.name], out_shape, attrs, out_quant)

    def conv2d(self, x, out_c, kernel, stride=(1, 1), padding=(0, 0, 0, 0), activation=None) -> str:
        shape = self.graph.tensors[x].shape
        attrs = Conv2dAttrs(stride=stride, padding=padding, activation=activation)
        oh, ow = output_hw(shape[1:3], kernel, stride, (1, 1), padding)
        return self.mac("conv2d", x, (out_c, *kernel, shape[3]), 0, kernel[0] * kernel[1] * shape[3],
                        (1, oh, ow, out_c), attrs)

    def depthwise(self, x, kernel, multiplier=1, stride=(1, 1), padding=(0, 0, 0, 0), activation=None) -> str:
        shape = self.graph.tensors[x].shape
        attrs = DepthwiseConv2dAttrs(stride=stride, padding=padding, depth_multiplier=multiplier, activation=activation)
        oh, ow = output_hw(shape[1:3], kernel, stride, (1, 1), padding)
        out_c = shape[3] * multiplier
        return self.mac("depthwise_conv2d", x, (1, *kernel, out_c), 3, kernel[0] * kernel[1], (1, oh, ow, out_c),
                        attrs)

    def fully_connected(self, x, units, activation=None) -> str:
        k = self.graph.tensors[x].shape[-1]
        return self.mac("fully_connected", x, (units, k), 0, k, (1, units), FullyConnectedAttrs(activation))

    def reshape(self, x, shape) -> str:
        return self.node("reshape", [x], shape, ReshapeAttrs(tuple(shape)), self.quant(x))

    def add(self, a, b, activation=None) -> str:
        scale = max(self.quant(a).scalar_scale, self.quant(b).scalar_scale) * self.rng.uniform(0.8, 2.0)
        out_quant = QuantParams.per_tensor(scale, int(self.rng.integers(-60, 60)))
        return self.node("add", [a, b], self.graph.tensors[a].shape, AddAttrs(activation), out_quant)

    def pool(self, op, x, kernel, stride, padding=(0, 0, 0, 0), activation=None) -> str:
        shape = self.graph.tensors[x].shape
        oh, ow = output_hw(shape[1:3], kernel, stride, (1, 1), padding)
        return self.node(op, [x], (1, oh, ow, shape[3]), Pool2dAttrs(kernel, stride, padding, activation),
                         self.quant(x))  # pooling keeps the input's quantization

    def finish(self, output: str) -> Graph:
        self.graph.outputs = [output]
        self.graph.lint()
        return self.graph


def same(in_hw, kernel, stride):
    top, bottom = same_padding(in_hw[0], kernel[0], stride[0])
    left, right = same_padding(in_hw[1], kernel[1], stride[1])
    return (top, left, bottom, right)


def conv_same_relu6(seed):
    b = Builder(seed, (1, 7, 6, 5))
    return b.finish(b.conv2d("x", 8, (3, 3), padding=same((7, 6), (3, 3), (1, 1)), activation="relu6"))


def conv_stride2_padded(seed):
    b = Builder(seed, (1, 9, 8, 3))
    return b.finish(b.conv2d("x", 6, (3, 3), stride=(2, 2), padding=(1, 0, 1, 2)))


def depthwise_same_relu(seed):
    b = Builder(seed, (1, 8, 8, 6))
    return b.finish(b.depthwise("x", (3, 3), padding=(1, 1, 1, 1), activation="relu"))


def depthwise_multiplier2_stride2(seed):
    b = Builder(seed, (1, 9, 7, 4))
    return b.finish(b.depthwise("x", (3, 3), multiplier=2, stride=(2, 2), padding=same((9, 7), (3, 3), (2, 2))))


def fully_connected_after_reshape(seed):
    b = Builder(seed, (1, 2, 4, 5))
    return b.finish(b.fully_connected(b.reshape("x", (1, 40)), 10, activation="relu"))


def add_residual(seed):
    """x + conv1x1(x): two operands with different scales and zero points (planned in place)."""
    b = Builder(seed, (1, 5, 6, 7))
    return b.finish(b.add("x", b.conv2d("x", 7, (1, 1)), activation="relu6"))


def avg_pool_same_stride2(seed):
    b = Builder(seed, (1, 9, 9, 4))
    return b.finish(b.pool("avg_pool2d", "x", (3, 3), (2, 2), same((9, 9), (3, 3), (2, 2))))


def avg_pool_global(seed):
    b = Builder(seed, (1, 5, 5, 16))
    return b.finish(b.pool("avg_pool2d", "x", (5, 5), (1, 1)))


def max_pool_relu(seed):
    b = Builder(seed, (1, 8, 6, 5))
    return b.finish(b.pool("max_pool2d", "x", (2, 2), (2, 2), activation="relu"))


CASES = [conv_same_relu6, conv_stride2_padded, depthwise_same_relu, depthwise_multiplier2_stride2,
         fully_connected_after_reshape, add_residual, avg_pool_same_stride2, avg_pool_global, max_pool_relu]


def check_firmware_equals_reference(graph, target_name, tmp_path, seed):
    """``target_name``: a target's name, or a ``Target`` (e.g. one with its DSP feature turned off)."""
    target = load_target(target_name) if isinstance(target_name, str) else target_name
    target_name = target.name
    plan = plan_memory(graph)
    emit_program(graph, plan, target, tmp_path / "src")
    firmware = build_firmware(tmp_path / "src", target, tmp_path / "build")
    x_tensor = graph.tensors[graph.inputs[0]]
    y_tensor = graph.tensors[graph.outputs[0]]
    inputs = np.random.default_rng(seed + 1000).integers(-128, 128, (INPUTS,) + x_tensor.shape, dtype=np.int8)
    result = run_firmware(firmware, target, inputs.reshape(INPUTS, -1), y_tensor.nbytes, timeout_s=60)
    assert result.ok, result.exit_reason + result.console
    assert result.outputs.shape == (INPUTS, y_tensor.nbytes)
    assert len(result.instructions_per_inference) == INPUTS
    for i, x in enumerate(inputs):
        expected = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
        assert expected.dtype == np.int8
        # a meaningful case: the reference output is not one saturated constant
        assert len(np.unique(expected)) > 3, f"degenerate case: {np.unique(expected)}"
        got = result.outputs[i].reshape(y_tensor.shape)
        mismatch = np.flatnonzero(got != expected)
        assert mismatch.size == 0, (
            f"{target_name}: input {i}: {mismatch.size}/{expected.size} bytes differ, first at {mismatch[0]}: "
            f"firmware {got.ravel()[mismatch[0]]} vs reference {expected.ravel()[mismatch[0]]}")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_kernel_firmware_is_bit_exact_on_cortex_m7(case, tmp_path):
    seed = CASES.index(case) + 1
    check_firmware_equals_reference(case(seed), "cortex-m7", tmp_path, seed)


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_conv_and_depthwise_firmware_is_bit_exact_on_other_targets(target_name, tmp_path):
    check_firmware_equals_reference(conv_same_relu6(1), target_name, tmp_path / "conv", 1)
    check_firmware_equals_reference(depthwise_multiplier2_stride2(4), target_name, tmp_path / "dw", 4)
