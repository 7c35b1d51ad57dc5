"""How each int8 op becomes one kernel call in the static schedule.

For every node this picks the TVM kernel (by static spec, so equal layers share one function), the
constant arrays it reads from flash, and the C argument list. The integer parameters come from
the same functions the reference interpreter uses (``mac_int8_params``, ``add_int8_params``...),
so the firmware cannot drift from the golden model.

In-place depthwise (the memory plan let the output overwrite its input, see
``memory/buffer_sharing.py``) runs channel by channel: copy input channel c into a scratch plane,
run the depthwise kernel specialised for one channel on it into a second plane, and copy that into
output channel c, which only overwrites elements of input channel c. The kernel is the same TVM
depthwise kernel (C = 1), so it stays bit-exact; the two planes are the call's ``scratch_bytes``.
"""

from dataclasses import dataclass, field

import numpy as np

from edgekit.errors import UnsupportedOpError
from edgekit.ops.add import add_int8_params
from edgekit.ops.base import activation_range, quant_of
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

    def c_statement(self) -> str:
        if self.body is not None:
            return self.body
        if self.kernel is None:
            return f"/* {self.node}: {self.op} is a view of its input; no code */"
        return f"EK_CHECK({self.kernel.name}({', '.join(self.args)}));"


def _mac_call(node, graph, family: str, spec, choice, prefix: str, pointer, out_channels: int,
              channel_axis: int = 0) -> LayerCall:
    from edgekit.codegen.kernels.mac_dsp import fold_input_offset, narrow_accumulators, widen_weights

    p = mac_int8_params(node, graph, out_channels)
    weight = graph.tensors[node.inputs[1]].data
    bias = bias_or_zeros(graph, node, out_channels, np.int32)
    folded = fold_input_offset(bias, weight, channel_axis, p.input_offset)
    kernel = choice.kernel(family, spec, narrow_accumulators(folded, p.shift, weight.size // out_channels))
    constants = [
        ConstArray(f"{prefix}_w", "int16_t", widen_weights(weight)) if kernel.weights_int16 else
        ConstArray(f"{prefix}_w", "int8_t", weight),
        ConstArray(f"{prefix}_b", "int32_t", folded if kernel.input_offset_in_bias else bias),
        ConstArray(f"{prefix}_m", "int32_t", p.multiplier),
        ConstArray(f"{prefix}_s", "int32_t", p.shift),
    ]
    scratch = ["ek_scratch"] if kernel.scratch_bytes else []
    args = [pointer(node.inputs[0])] + [c.name for c in constants] + [pointer(node.output)] + scratch + [
        str(p.input_offset), str(p.output_offset), str(p.act_min), str(p.act_max)]
    return LayerCall(node.name, node.op, kernel, args, constants, scratch_bytes=kernel.scratch_bytes)


def _conv2d(node, graph, prefix, pointer, choice):
    from edgekit.codegen.kernels.conv2d import Conv2dSpec

    a, x, w = node.attrs, graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    spec = Conv2dSpec(x.shape[1:], w.shape[0], w.shape[1:3], a.stride, a.dilation, a.padding)
    return _mac_call(node, graph, "conv2d", spec, choice, prefix, pointer, w.shape[0])


def _depthwise_conv2d(node, graph, prefix, pointer, choice):
    from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec

    a, x, w = node.attrs, graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    spec = DepthwiseConv2dSpec(x.shape[1:], w.shape[1:3], a.depth_multiplier, a.stride, a.dilation, a.padding)
    return _mac_call(node, graph, "depthwise_conv2d", spec, choice, prefix, pointer, w.shape[3], 3)


def _inplace_depthwise_conv2d(node, graph, prefix, pointer, choice):
    """Channel by channel through two scratch planes (see the module doc); needs depth multiplier 1.
    The DSP kernel copies each input channel into its own plane before writing that output channel,
    so it runs in place as it is."""
    from edgekit.codegen.kernels.depthwise_conv2d import DepthwiseConv2dSpec
    from edgekit.codegen.kernels.variants import DSP

    call = _depthwise_conv2d(node, graph, prefix, pointer, choice)
    if call.kernel.variant == DSP:
        return call

    a, x, w = node.attrs, graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    if a.depth_multiplier != 1:
        raise UnsupportedOpError(f"node {node.name}: in-place depthwise needs depth multiplier 1, "
                                 f"got {a.depth_multiplier}")
    (_, height, width, channels), kernel = x.shape, tuple(w.shape[1:3])
    spec = DepthwiseConv2dSpec((height, width, 1), kernel, 1, a.stride, a.dilation, a.padding)
    out_h, out_w, _ = spec.output_shape
    call = _mac_call(node, graph, "depthwise_conv2d", spec, choice, prefix, pointer, channels, 3)
    planar = ConstArray(f"{prefix}_wc", "int8_t", np.ascontiguousarray(np.moveaxis(w.data.reshape(kernel + (channels,)),
                                                                                   -1, 0)))
    call.constants = [planar] + call.constants[1:]
    taps = kernel[0] * kernel[1]
    in_pixels, out_pixels = height * width, out_h * out_w
    offsets = ", ".join(call.args[6:])
    call.body = f"""for (int32_t c = 0; c < {channels}; ++c) {{ /* {node.name}: in-place depthwise, channel by channel */
        int8_t *plane_in = ek_scratch, *plane_out = ek_scratch + {in_pixels};
        const int8_t *in = {pointer(node.inputs[0])} + c;
        int8_t *out = {pointer(node.output)} + c;
        for (int32_t i = 0; i < {in_pixels}; ++i) plane_in[i] = in[i * {channels}];
        EK_CHECK({call.kernel.name}(plane_in, {planar.name} + c * {taps}, {prefix}_b + c, {prefix}_m + c, {prefix}_s + c, plane_out, {offsets}));
        for (int32_t i = 0; i < {out_pixels}; ++i) out[i * {channels}] = plane_out[i];
    }}"""
    call.scratch_bytes = in_pixels + out_pixels
    return call


def _fully_connected(node, graph, prefix, pointer, choice):
    from edgekit.codegen.kernels.fully_connected import FullyConnectedSpec

    w = graph.tensors[node.inputs[1]]
    spec = FullyConnectedSpec(w.shape[1], w.shape[0])
    return _mac_call(node, graph, "fully_connected", spec, choice, prefix, pointer, w.shape[0])


def _add(node, graph, prefix, pointer):
    from edgekit.codegen.kernels.add import AddSpec, add_kernel

    p = add_int8_params(node, graph)
    scalars = [p.a_offset, p.a_mult, p.a_shift, p.b_offset, p.b_mult, p.b_shift, p.out_offset, p.out_mult,
               p.out_shift, p.act_min, p.act_max]
    args = [pointer(node.inputs[0]), pointer(node.inputs[1]), pointer(node.output)] + [str(v) for v in scalars]
    return LayerCall(node.name, node.op, add_kernel(AddSpec(graph.tensors[node.output].size)), args)


def _pool2d(node, graph, prefix, pointer):
    from edgekit.codegen.kernels.pool2d import Pool2dSpec, avg_pool2d_kernel, max_pool2d_kernel

    a, x = node.attrs, graph.tensors[node.inputs[0]]
    make = avg_pool2d_kernel if node.op == "avg_pool2d" else max_pool2d_kernel
    clamp = activation_range(a.activation, quant_of(graph, node.output))
    kernel = make(Pool2dSpec(x.shape[1:], a.kernel, a.stride, a.padding))
    args = [pointer(node.inputs[0]), pointer(node.output), str(clamp.act_min), str(clamp.act_max)]
    return LayerCall(node.name, node.op, kernel, args)


def _softmax(node, graph, prefix, pointer):
    """Over the last axis: every other axis is a row."""
    from edgekit.codegen.kernels.softmax import SoftmaxSpec, softmax_kernel
    from edgekit.ops.softmax import softmax_int8_params

    x = graph.tensors[node.inputs[0]]
    depth = x.shape[-1]
    p = softmax_int8_params(node, graph)
    args = [pointer(node.inputs[0]), pointer(node.output)] + [
        str(v) for v in (p.input_multiplier, p.input_left_shift, p.diff_min)]
    return LayerCall(node.name, node.op, softmax_kernel(SoftmaxSpec(x.size // depth, depth)), args)


def _mean(node, graph, prefix, pointer):
    """Spatial mean of an NHWC tensor; 1/(H*W) is folded into the multiplier here, as TFLite does."""
    from edgekit.codegen.kernels.mean import MeanSpec, mean_kernel
    from edgekit.ops.mean import fold_count, mean_int8_params

    x = graph.tensors[node.inputs[0]]
    p = mean_int8_params(node, graph)
    multiplier, shift = fold_count(p.multiplier, p.shift, x.shape[1] * x.shape[2])
    args = [pointer(node.inputs[0]), pointer(node.output)] + [
        str(v) for v in (p.input_zero_point, p.output_zero_point, multiplier, shift)]
    return LayerCall(node.name, node.op, mean_kernel(MeanSpec(tuple(int(d) for d in x.shape[1:]))), args)


def _pad(node, graph, prefix, pointer):
    from edgekit.codegen.kernels.pad import PadSpec, pad_kernel
    from edgekit.ops.pad import pad_int8_value

    x = graph.tensors[node.inputs[0]]
    pads = tuple((int(before), int(after)) for before, after in node.attrs.pads)
    spec = PadSpec(tuple(int(d) for d in x.shape), pads)
    args = [pointer(node.inputs[0]), pointer(node.output), str(pad_int8_value(node, graph))]
    return LayerCall(node.name, node.op, pad_kernel(spec), args)


def _transpose(node, graph, prefix, pointer):
    from edgekit.codegen.kernels.transpose import TransposeSpec, transpose_kernel

    x = graph.tensors[node.inputs[0]]
    spec = TransposeSpec(tuple(int(d) for d in x.shape), tuple(int(p) for p in node.attrs.perm))
    return LayerCall(node.name, node.op, transpose_kernel(spec), [pointer(node.inputs[0]), pointer(node.output)])


def _view(node, graph, prefix, pointer):
    return LayerCall(node.name, node.op, None)


EMITTERS = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "fully_connected": _fully_connected,
    "add": _add,
    "avg_pool2d": _pool2d,
    "max_pool2d": _pool2d,
    "reshape": _view,
    "softmax": _softmax,
    "mean": _mean,
    "pad": _pad,
    "transpose": _transpose,
}


def constraint_op_has_kernel(node) -> tuple[bool, str]:
    """Every op of the int8 graph needs a C kernel (or must be a view such as reshape)."""
    if node.op in EMITTERS:
        return True, ""
    return False, (f"op {node.op!r} (node {node.name}) has no C kernel yet; ops with kernels: "
                   f"{', '.join(sorted(EMITTERS))}")


MAC_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")


def layer_call(node, graph, prefix: str, pointer, choice, in_place: bool = False) -> LayerCall:
    """The schedule step for ``node``; ``pointer(tensor_name)`` gives the C expression of a buffer.
    ``in_place``: the memory plan put the output over the input (depthwise only needs to know)."""
    ok, detail = constraint_op_has_kernel(node)
    if not ok:
        raise UnsupportedOpError(detail)
    if in_place and node.op == "depthwise_conv2d":
        return _inplace_depthwise_conv2d(node, graph, prefix, pointer, choice)
    if node.op in MAC_OPS:
        return EMITTERS[node.op](node, graph, prefix, pointer, choice)
    return EMITTERS[node.op](node, graph, prefix, pointer)


def is_inplace_depthwise(plan, tensor: str) -> bool:
    """Whether ``plan`` placed ``tensor`` (a depthwise output) over the input it overwrites."""
    alias = plan.aliases.get(tensor)
    return alias is not None and alias.in_place and alias.reason == "in-place depthwise"
