"""How an int8 node becomes one step of the static schedule: the ``LayerCall`` its op lowers it to.

Each op's definition lowers its nodes (``OpDef.lower``): it picks the TVM kernel by static spec (so
equal layers share one function), the constant arrays the kernel reads from flash, and the value of
every C parameter by name. :func:`kernel_call` puts those values in the order of the kernel's own
prototype, so the C argument order is kept in one place, the kernel definition. The integer
parameters come from the functions the reference interpreter uses (``mac_int8_params``,
``add_int8_params``...), so the firmware cannot drift from the golden model.
"""

from dataclasses import dataclass, field

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops import OPS, get_op
from edgekit.ops.conv_params import bias_or_zeros, mac_int8_params


@dataclass(frozen=True)
class ConstArray:
    """A constant placed in flash: C name, C element type and values."""

    name: str
    ctype: str
    values: np.ndarray


@dataclass
class LayerCall:
    """One step of the schedule: the kernel to call (None for a view) and its C arguments."""

    node: str
    op: str
    kernel: object | None
    args: list[str] = field(default_factory=list)
    constants: list[ConstArray] = field(default_factory=list)
    body: str | None = None  # C statements replacing the plain kernel call (in-place depthwise)
    scratch_bytes: int = 0  # bytes of ``ek_scratch`` the body uses
    tuning_key: str | None = None  # MAC layers: what ``--tune`` keys this layer's variant by
    variants: tuple[str, ...] = ()  # MAC layers: the kernel variants that could run it

    def c_statement(self) -> str:
        if self.body is not None:
            return self.body
        if self.kernel is None:
            return f"/* {self.node}: {self.op} is a view of its input; no code */"
        return f"EK_CHECK({self.kernel.name}({', '.join(self.args)}));"


def kernel_call(node, kernel, values: dict, constants=()) -> LayerCall:
    """The call of ``kernel`` for ``node`` with C parameter ``name`` set to ``values[name]``, in the
    kernel's parameter order; a value without a parameter, or a parameter without a value, is an error."""
    params = kernel.params
    if set(values) != set(params):
        raise ValueError(f"kernel {kernel.name} takes ({', '.join(params)}); node {node.name} gave "
                         f"({', '.join(values)})")
    return LayerCall(node.name, node.op, kernel, [str(values[name]) for name in params], list(constants))


def view_call(node) -> LayerCall:
    """The schedule step of an op whose output is a view of its input (no code)."""
    return LayerCall(node.name, node.op, None)


def mac_call(node, graph, family: str, spec, kernels, prefix: str, pointer, out_channels: int) -> LayerCall:
    """The call of a multiply-accumulate kernel of ``family`` for ``spec`` (see ``codegen/kernels/mac.py``),
    the variant ``kernels`` (a ``KernelChoice``) picks: weights, bias and the per-channel requantization
    as constants, offsets and clamp as scalars. The DSP variants take the input offset folded into the
    bias, maybe int16 weights, and a scratch buffer (``codegen/kernels/mac_dsp.py``); the Helium depthwise
    kernel its filter in channel blocks (``codegen/kernels/depthwise_mve.py``)."""
    from edgekit.codegen.kernels.depthwise_mve import block_filter
    from edgekit.codegen.kernels.mac_dsp import channel_table, clamp_kind, widen_weights
    from edgekit.codegen.kernels.variants import tuning_key

    p = mac_int8_params(node, graph, out_channels)
    weight = graph.tensors[node.inputs[1]].data
    bias = bias_or_zeros(graph, node, out_channels, np.int32)
    folded = _folded_bias(node, graph, p, out_channels)
    narrow = requantizes_narrow(node, graph, out_channels)
    kernel = kernels.kernel(family, spec, narrow, clamp_kind(p.act_min, p.act_max, p.output_offset), node.name)
    weights = {
        "filter": ConstArray(f"{prefix}_w", "int16_t", widen_weights(weight, kernel.doubled_products))
        if kernel.weights_int16 else
        ConstArray(f"{prefix}_w", "int8_t", block_filter(weight) if kernel.filter_blocks else weight),
    }
    if "channels" in kernel.params:  # bias and requantization in one table (mac_dsp.channel_table)
        weights["channels"] = ConstArray(f"{prefix}_q", "int32_t", channel_table(folded, p.multiplier, p.shift,
                                                                                 kernel.doubled_products))
    else:
        weights.update(bias=ConstArray(f"{prefix}_b", "int32_t", folded if kernel.input_offset_in_bias else bias),
                       multiplier=ConstArray(f"{prefix}_m", "int32_t", p.multiplier),
                       shift=ConstArray(f"{prefix}_s", "int32_t", p.shift))
    values = {"input": pointer(node.inputs[0]), "output": pointer(node.output),
              **{name: const.name for name, const in weights.items()},
              "input_offset": p.input_offset, "output_offset": p.output_offset,
              "act_min": p.act_min, "act_max": p.act_max}
    if kernel.scratch_bytes:
        values["scratch"] = "ek_scratch"
    call = kernel_call(node, kernel, values, weights.values())
    call.scratch_bytes = kernel.scratch_bytes
    call.tuning_key = tuning_key(family, spec, narrow)
    call.variants = tuple(kernels.variants(family, spec, node.name))
    return call


def _folded_bias(node, graph, p, out_channels: int) -> np.ndarray:
    """The bias with the input offset folded in (what the DSP kernels take)."""
    from edgekit.codegen.kernels.mac_dsp import fold_input_offset

    weight = graph.tensors[node.inputs[1]].data
    bias = bias_or_zeros(graph, node, out_channels, np.int32)
    return fold_input_offset(bias, weight, get_op(node.op, node).weight_channel_axis, p.input_offset)


def requantizes_narrow(node, graph, out_channels: int) -> bool:
    """Whether the int8 MAC ``node`` gets the narrow requantization form of the DSP kernels (it depends on
    the calibrated scales and the bias, not only on the shape; depth compression's latency table asks too)."""
    from edgekit.codegen.kernels.mac_dsp import narrow_accumulators

    p = mac_int8_params(node, graph, out_channels)
    depth = graph.tensors[node.inputs[1]].data.size // out_channels
    return narrow_accumulators(_folded_bias(node, graph, p, out_channels), p.shift, depth)


def constraint_op_has_kernel(node) -> tuple[bool, str]:
    """Every op of the int8 graph needs a C kernel (or must be a view such as reshape)."""
    if get_op(node.op, node).has_kernel:
        return True, ""
    with_kernels = sorted(name for name, op in OPS.items() if op.has_kernel)
    return False, f"op {node.op!r} (node {node.name}) has no C kernel yet; ops with kernels: {', '.join(with_kernels)}"


def constraint_int8_activations(node, graph) -> tuple[bool, str]:
    """The kernels compute in int8: every activation a node reads or writes is int8, except at the
    ops that convert (quantize, dequantize) and views (reshape)."""
    if get_op(node.op, node).any_dtype:
        return True, ""
    for name in list(node.inputs) + list(node.outputs):
        tensor = graph.tensors[name]
        if not tensor.is_constant and tensor.dtype != "int8":
            return False, (f"node {node.name} ({node.op}) computes in {tensor.dtype} (tensor {name!r}) inside an int8 "
                           "model; edgekit's kernels are int8: quantize that part of the model to int8")
    return True, ""


def layer_call(node, graph, prefix: str, pointer, kernels, in_place: bool = False) -> LayerCall:
    """The schedule step for ``node``; ``pointer(tensor_name)`` gives the C expression of a buffer.
    ``kernels`` (a ``codegen.kernels.variants.KernelChoice``) picks the variant of ops that have several
    (``OpDef.kernel_variants``). ``in_place``: the memory plan put the output over the input it
    overwrites (``overwrites_input``)."""
    ok, detail = constraint_op_has_kernel(node)
    if not ok:
        raise UnsupportedOpError(detail)
    op = get_op(node.op, node)
    if op.kernel_variants:
        return op.lower(node, graph, prefix, pointer, in_place, kernels=kernels)
    return op.lower(node, graph, prefix, pointer, in_place)


def overwrites_input(plan, tensor: str) -> bool:
    """Whether ``plan`` placed ``tensor`` over an input of its node that the node overwrites."""
    alias = plan.aliases.get(tensor)
    return alias is not None and alias.in_place


def graph_view(graph, shapes: dict[str, tuple]):
    """``graph`` with some activation shapes replaced (what a kernel sees on a window of them)."""
    from dataclasses import replace

    from edgekit.ir import Graph

    tensors = dict(graph.tensors)
    for name, shape in shapes.items():
        tensors[name] = replace(graph.tensors[name], shape=tuple(shape))
    return Graph(graph.name, tensors, [], list(graph.inputs), list(graph.outputs))


def row_loop_call(node, graph, prefix: str, row0: dict[str, str], strides: dict[str, int], rows: int,
                  width: int, kernels) -> LayerCall:
    """A row-wise ``node`` (``OpDef.row_wise``: add, 1x1 conv) run one output row per kernel call, in
    increasing row order: call r reads row r of every activation input and writes output row r, each
    at ``row0[name] + r * strides[name]``. The kernel depends on the row width only. This is the call
    sequence the streaming in-place rule assumes (``memory.buffer_sharing``), and it lets the
    operands be rows of bigger buffers (patch regions, the split tensor)."""
    names = [name for name in node.inputs if not graph.tensors[name].is_constant] + [node.output]
    shapes = {name: (1, 1, width, graph.tensors[name].shape[3]) for name in names}
    pointers = {name: f"({row0[name]} + r * {strides[name]})" for name in names}
    call = layer_call(node, graph_view(graph, shapes), prefix, pointers.__getitem__, kernels)
    call.body = (f"for (int32_t r = 0; r < {rows}; ++r) {{ /* {node.name}: row by row */\n"
                 f"        {call.c_statement()}\n    }}")
    return call


def streamed_call(node, graph, prefix: str, pointer, kernels) -> LayerCall:
    """``row_loop_call`` over whole tensors, ``stream_pixels`` (the op's definition) per call: how a
    row-wise node runs when the plan wrote its output over its input by the streaming rule."""
    _, height, width, _ = graph.tensors[node.output].shape
    pixels = get_op(node.op, node).stream_pixels(node, graph)
    names = [name for name in node.inputs if not graph.tensors[name].is_constant] + [node.output]
    strides = {name: pixels * graph.tensors[name].shape[3] for name in names}
    return row_loop_call(node, graph, prefix, {name: pointer(name) for name in names}, strides,
                         height * width // pixels, pixels, kernels)
