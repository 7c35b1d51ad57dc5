"""What every op definition provides, and helpers shared by op families.

An op is one object (``OpDef`` subclass instance) registered by name. Every stage asks it, never a
table of op names of its own: the IR (``constraints``, ``infer_shapes``), the interpreter
(``run_float``, ``run_int8``), the quantizer (``weight_channel_axis``, ``same_quant_as_input``,
``same_quant_inputs``, ``fixed_output_quant``, ``int8_unsupported``), the passes (``folds_batch_norm``, ``fuses_activation``,
``is_identity``), bias correction (``expected_output_error``), the memory planner (``buffer_share``),
the patch stage (``patchable``, ``window``, ``with_padding``, ``patch_constraints``, ``row_wise``), the
code generator (``lower``) and ``edgekit ops`` (all of them). A new op is its op file, its kernel
file, its importer mapping and its tests; ``tests/test_op_definitions.py`` checks that every
registered op answers every stage consistently.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.fixedpoint import round_half_away
from edgekit.ops.window import Window

ACTIVATIONS = (None, "relu", "relu6", "relu_n1_to_1")  # relu_n1_to_1: TFLite's clamp to [-1, 1]


@dataclass(frozen=True)
class BufferShare:
    """An op's in-place rule: its output may take the arena buffer of one of its inputs.

    ``in_place``: the op overwrites that input, which must die at this node; otherwise the output is
    a read-only view of the input's bytes (reshape) and both may stay live. ``streams``: the op runs
    as a sequence of kernel calls (``row_wise``: ``stream_pixels`` output pixels per call, an
    elementwise add one call) whose reads and writes the planner knows, so its output may start below
    its input by as much as no later call still reads (``memory/streaming.py``); without it an
    in-place output starts at its input's offset (channel by channel, ``inplace_scratch_bytes``,
    ``channelwise_overwrite_ok``). ``sources(node)`` gives the
    input positions that may be taken, in order of preference. ``option`` names the ``plan_memory``
    keyword that turns the rule on (None: always on). ``reason`` labels the alias in plans and reports.
    ``elementwise``: layer by layer the op is one kernel call that reads element i of the taken input
    before it writes element i of the output (add, mul, a table lookup), rather than row calls.
    The plan checker proves every in-place write from the rule and the placements.
    """

    reason: str
    in_place: bool
    sources: Callable[[object], tuple[int, ...]]
    option: str | None = None
    streams: bool = False
    elementwise: bool = False


class OpDef:
    """Base class of op definitions; subclasses set ``name`` and ``attrs_type`` and override what applies.

    The defaults describe an op that no later stage treats specially: no weights, its own calibrated
    output quantization, no in-place rule, not allowed in a patch stage, no C kernel.
    """

    name: str = ""
    attrs_type: type | None = None
    #: the int8 output must share the input's quantization (data movement: reshape, pooling, pad...)
    same_quant_as_input: bool = False
    #: every int8 input must carry the output's quantization: the kernel compares or copies raw bytes
    #: (maximum, minimum, concat); edgekit's quantizer requantizes the others, as TF's converter does
    same_quant_inputs: bool = False
    #: int8 output (scale, zero point) fixed by TFLite whatever the calibrated range (softmax)
    fixed_output_quant: tuple[float, int] | None = None
    #: input 1 is a weight quantized to int8 per output channel along this axis (input 2, if any,
    #: is its int32 bias); None: the op has no weights
    weight_channel_axis: int | None = None
    #: a batch_norm reading only this op's output folds into its weights (passes.fold_batchnorm)
    folds_batch_norm: bool = False
    #: a relu/relu6 clamp reading only this op's output folds into ``attrs.activation``
    #: (passes.fuse_activation)
    fuses_activation: bool = False
    #: a spatial zero-point PAD feeding only this op's first input folds into ``attrs.padding``
    #: (passes.fold_pad): padding contributes nothing to the op's sums
    folds_pad: bool = False
    #: why this op can never be quantized to int8 (None: it can)
    int8_unsupported: str | None = None
    #: the memory planner's in-place or view rule for this op (memory.buffer_sharing), or None
    buffer_share: BufferShare | None = None
    #: its kernel reads or writes other dtypes than int8 (quantize and dequantize convert from and to
    #: float32 or uint8), or it runs no code (a reshape view): every other kernel is int8 only
    any_dtype: bool = False
    #: ``lower`` takes ``kernels`` (a ``codegen.kernels.variants.KernelChoice``): the op's kernel comes in
    #: several variants (schedules), picked by the target's CPU features
    kernel_variants: bool = False
    #: the op may run on spatial patches (memory.patch_stage): it maps an output box to an input
    #: box through ``window`` and runs on a cropped input with the padding ``with_padding`` gives
    patchable: bool = False
    #: rules on attrs and input shapes, checked by ``Graph.lint`` (so by every importer) and listed by
    #: ``edgekit ops``: each ``constraint_*(attrs, in_shapes) -> (ok, detail)`` has its rule as docstring
    constraints: tuple = ()
    #: further rules for running on patches, ``constraint_*(node, graph) -> (ok, detail)``, checked by
    #: the patch stage
    patch_constraints: tuple = ()

    def check(self, node, in_shapes: list[tuple]) -> None:
        """UnsupportedOpError naming ``node`` and the first of ``constraints`` it breaks, if any."""
        for constraint in self.constraints:
            ok, detail = constraint(node.attrs, in_shapes)
            if not ok:
                raise UnsupportedOpError(f"node {node.name} ({self.name}): {rule_text(constraint)} ({detail})")

    def infer_shapes(self, attrs, in_shapes: list[tuple]) -> list[tuple]:
        """The output shapes for these input shapes (which meet ``constraints``)."""
        raise NotImplementedError

    def run_float(self, attrs, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The float reference: the outputs of ``inputs`` (NumPy arrays) in float32."""
        raise NotImplementedError

    def run_int8(self, node, graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The exact int8 reference (TFLite's integer arithmetic), reading quantization from ``graph``."""
        raise NotImplementedError

    def macs(self, attrs, in_shapes: list[tuple], out_shapes: list[tuple]) -> int:
        """Multiply-accumulates of one inference (0 for data movement ops)."""
        return 0

    def is_identity(self, node, graph) -> bool:
        """Whether ``node`` returns its input unchanged (passes.remove_identities drops it)."""
        return False

    def expected_output_error(self, weight_error: np.ndarray, input_mean: np.ndarray) -> np.ndarray:
        """Per output channel, the output shift dW . E[x] caused by a weight error ``weight_error``
        (in the weight's layout) on inputs of per-channel mean ``input_mean`` (bias correction).
        Only ops with weights (``weight_channel_axis``) have one."""
        raise NotImplementedError(f"op {self.name} has no weights")

    def window(self, node, graph) -> Window:
        """The spatial window geometry of ``node`` for patching: which input pixels each output
        pixel reads. The default is pointwise (1x1 kernel, stride 1, no padding)."""
        return Window()

    def with_padding(self, attrs, padding: tuple[int, int, int, int]):
        """``attrs`` for running on a patch whose cropped input is padded by ``padding`` (top, left,
        bottom, right). Pointwise ops have no padding and keep their attrs."""
        return attrs

    def row_wise(self, node, graph) -> bool:
        """Whether the firmware may run ``node`` one output row per call, reading and writing rows
        of bigger buffers in place (its kernel sees one row; elementwise ops, 1x1 convolutions)."""
        return False

    def stream_pixels(self, node, graph) -> int:
        """Pixels per kernel call when a ``row_wise`` node writes over its input by its streaming rule
        layer by layer (the calls ``memory.buffer_sharing.layer_accesses`` describes and
        ``codegen.layer_calls.streamed_call`` makes): one output row by default."""
        return graph.tensors[node.output].shape[2]

    def channelwise_overwrite_ok(self, node, graph, in_shape: tuple, out_shape: tuple) -> bool:
        """For an in-place rule that is not ``streams`` (the output starts at its input): whether the
        kernel's writes never reach input elements it still has to read, with input and output of
        these shapes. The default: the output is no larger than the input."""
        return int(np.prod(out_shape)) <= int(np.prod(in_shape))

    def inplace_scratch_bytes(self, in_shape: tuple, out_shape: tuple) -> int:
        """Scratch (outside the arena) that writing the output over the input needs, for an in-place
        rule that is not ``streams`` (0 otherwise)."""
        return 0

    @property
    def has_kernel(self) -> bool:
        """Whether the code generator can emit this op (it overrides ``lower``)."""
        return type(self).lower is not OpDef.lower

    def lower(self, node, graph, prefix: str, pointer, in_place: bool = False):
        """The ``LayerCall`` (codegen/layer_calls.py) that runs int8 ``node`` in the firmware: its kernel,
        constants and C arguments. ``pointer(tensor)`` is the C expression of a buffer, ``prefix`` names
        the node's constants, and ``in_place`` says the memory plan put the output over the input
        that ``buffer_share`` allows. Kernel modules are imported here, lazily: only codegen needs TVM."""
        raise UnsupportedOpError(f"op {self.name!r} (node {node.name}) has no C kernel yet")


class DataMovementOp(OpDef):
    """An op that moves bytes and computes nothing (transpose, slice, gather): the same function of
    attrs and input in float and int8 (``move``), and the int8 output keeps the input's quantization."""

    same_quant_as_input = True

    def move(self, attrs, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_float(self, attrs, inputs):
        return [self.move(attrs, inputs[0])]

    def run_int8(self, node, graph, inputs):
        return [self.move(node.attrs, inputs[0])]


def rule_text(constraint) -> str:
    """A ``constraint_*`` function's docstring on one line: the rule the user sees."""
    return " ".join(constraint.__doc__.split())


@dataclass(frozen=True)
class Int8Clamp:
    """The output clamp of a fused activation, in the output's integer domain."""

    act_min: int
    act_max: int


def activation_range(activation: str | None, quant) -> Int8Clamp:
    """TFLite's CalculateActivationRangeQuantized for int8 outputs (it divides in float32)."""
    scale = np.float32(quant.scalar_scale)
    zero_point = quant.scalar_zero_point

    def quantize(value: float) -> int:
        return zero_point + int(round_half_away(np.float32(value) / scale))

    if activation is None:
        return Int8Clamp(-128, 127)
    if activation == "relu":
        return Int8Clamp(max(-128, quantize(0.0)), 127)
    if activation == "relu6":
        return Int8Clamp(max(-128, quantize(0.0)), min(127, quantize(6.0)))
    if activation == "relu_n1_to_1":
        return Int8Clamp(max(-128, quantize(-1.0)), min(127, quantize(1.0)))
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def apply_activation(x: np.ndarray, activation: str | None) -> np.ndarray:
    if activation is None:
        return x
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    if activation == "relu_n1_to_1":
        return np.clip(x, -1, 1)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def quant_of(graph, tensor_name: str):
    """The quantization parameters of a tensor, or a clear error if it has none."""
    quant = graph.tensors[tensor_name].quant
    if quant is None:
        raise ValueError(f"tensor {tensor_name} has no quantization parameters; quantize the graph first")
    return quant
