"""ONNX -> Graph. NCHW models become NHWC here, once: activations, conv filters (OIHW -> OHWI, or
[1,KH,KW,C] for depthwise) and channel axes are converted as nodes are translated, and a flatten of
a spatial tensor gets an explicit NHWC -> NCHW transpose so that the element order is unchanged.
"""

from pathlib import Path

import numpy as np

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.frontend.model_checks import corrupt_file_errors
from edgekit.ir import Graph, Node, Tensor
from edgekit.ops import get_op
from edgekit.ops.batch_norm import BatchNormAttrs
from edgekit.ops.clamp import ClampAttrs
from edgekit.ops.concat import ConcatAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.elementwise import ElementwiseAttrs
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.leaky_relu import LeakyReluAttrs
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.quantize import NoAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.softmax import SoftmaxAttrs
from edgekit.ops.transpose import TransposeAttrs
from edgekit.ops.transpose_conv import TransposeConvAttrs

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


def _attrs(node) -> dict:
    """A node's attributes by name; a name that is not UTF-8 text (protobuf then gives bytes) marks a
    corrupt file, not an attribute to ignore."""
    import onnx

    for attribute in node.attribute:
        if not isinstance(attribute.name, str):
            raise ValueError(f"node {node.name!r} ({node.op_type}) has an attribute named {attribute.name[:32]!r}, "
                             "not text")  # corrupt_file_errors names the file
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constant_value(node) -> np.ndarray:
    """The value of an ONNX Constant node, whichever one of its ``value*`` attributes holds it."""
    from onnx import numpy_helper

    attrs = _attrs(node)
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise UnsupportedOpError(f"ONNX Constant node {node.name or node.output[0]}: only numeric values are "
                             f"supported, got attributes {sorted(attrs)}")


class _Translator:
    """Walks the ONNX graph in order, emitting edgekit nodes; one method per ONNX op type."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph = Graph(name=model.graph.name or "model")
        self.constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self.renames: dict[str, str] = {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(node)

    # -- helpers ---------------------------------------------------------------------------------
    def name(self, onnx_name: str) -> str:
        return self.renames.get(onnx_name, onnx_name)

    def shape(self, onnx_name: str) -> tuple:
        return self.graph.tensors[self.name(onnx_name)].shape

    def const(self, onnx_name: str, node) -> np.ndarray:
        if onnx_name not in self.constants:
            raise UnsupportedOpError(f"ONNX node {node.name} ({node.op_type}): input {onnx_name} must be a "
                                     "constant (initializer) for edgekit")
        return self.constants[onnx_name]

    def add_constant(self, base: str, data: np.ndarray) -> str:
        name = self.graph.unique_name(base)
        self.graph.add_tensor(Tensor(name, data.shape, str(data.dtype), data))
        return name

    def emit(self, op: str, inputs: list[str], attrs, out_name: str, node_name: str) -> str:
        shapes = [self.graph.tensors[n].shape for n in inputs]
        out_name = self.graph.unique_name(out_name)
        node = Node(self.graph.unique_name(node_name), op, inputs, [out_name], attrs)
        definition = get_op(op, node)
        definition.check(node, shapes)  # the op's rules before its shape function, which assumes them
        (shape,) = definition.infer_shapes(attrs, shapes)
        self.graph.add_tensor(Tensor(out_name, shape, "float32"))
        self.graph.nodes.append(node)
        return out_name

    def bind(self, onnx_out: str, name: str) -> None:
        self.renames[onnx_out] = name

    # -- ops -------------------------------------------------------------------------------------
    def Conv(self, node):
        a = _attrs(node)
        w = self.const(node.input[1], node).astype(np.float32)
        x = self.name(node.input[0])
        in_c = self.shape(node.input[0])[3]
        out_c, _, kh, kw = w.shape
        group = a.get("group", 1)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedOpError(f"ONNX node {node.name} (Conv): auto_pad is not supported; export with "
                                     "explicit pads")
        top, left, bottom, right = (lambda p: (p[0], p[1], p[2], p[3]))(a.get("pads", [0, 0, 0, 0]))
        common = dict(stride=tuple(a.get("strides", (1, 1))), dilation=tuple(a.get("dilations", (1, 1))),
                      padding=(top, left, bottom, right))
        if group == 1:
            op, attrs, filt = "conv2d", Conv2dAttrs(**common), w.transpose(0, 2, 3, 1)
        elif group == in_c and out_c % in_c == 0:
            op = "depthwise_conv2d"
            attrs = DepthwiseConv2dAttrs(**common, depth_multiplier=out_c // in_c)
            filt = w.reshape(out_c, kh, kw).transpose(1, 2, 0)[np.newaxis]
        else:
            raise UnsupportedOpError(f"ONNX node {node.name} (Conv): grouped convolution with group={group} is "
                                     "not supported (only group 1 or depthwise)")
        inputs = [x, self.add_constant(f"{node.output[0]}_weight", np.ascontiguousarray(filt))]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.add_constant(f"{node.output[0]}_bias", self.const(node.input[2], node)
                                            .astype(np.float32)))
        self.bind(node.output[0], self.emit(op, inputs, attrs, node.output[0], node.name or op))

    def BatchNormalization(self, node):
        gamma, beta, mean, var = (self.const(n, node).astype(np.float32) for n in node.input[1:5])
        attrs = BatchNormAttrs(epsilon=float(_attrs(node).get("epsilon", 1e-5)))
        names = [self.add_constant(f"{node.output[0]}_{k}", v)
                 for k, v in zip(("gamma", "beta", "mean", "var"), (gamma, beta, mean, var))]
        out = self.emit("batch_norm", [self.name(node.input[0])] + names, attrs, node.output[0],
                        node.name or "batch_norm")
        self.bind(node.output[0], out)

    def ConvTranspose(self, node):
        """Output pixel i * stride - pads_begin + k, as edgekit's transpose_conv; the filter (I, O, KH, KW)
        becomes (O, KH, KW, I)."""
        a = _attrs(node)
        w = self.const(node.input[1], node).astype(np.float32)
        if a.get("group", 1) != 1 or tuple(a.get("dilations", (1, 1))) != (1, 1) or "output_shape" in a or \
                a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedOpError(f"ONNX node {node.name} (ConvTranspose): only group 1, dilation 1 and explicit "
                                     "pads are supported")
        stride = tuple(a.get("strides", (1, 1)))
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        extra = a.get("output_padding", [0, 0])
        in_hw = self.shape(node.input[0])[1:3]
        out_hw = tuple((size - 1) * s + k - before - after + more for size, s, k, before, after, more in
                       zip(in_hw, stride, w.shape[2:], (top, left), (bottom, right), extra))
        inputs = [self.name(node.input[0]),
                  self.add_constant(f"{node.output[0]}_weight", np.ascontiguousarray(w.transpose(1, 2, 3, 0)))]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.add_constant(f"{node.output[0]}_bias", self.const(node.input[2], node)
                                            .astype(np.float32)))
        attrs = TransposeConvAttrs(stride, (top, left), out_hw)
        self.bind(node.output[0], self.emit("transpose_conv", inputs, attrs, node.output[0], node.name or "up"))

    def _rearranged(self, node, blocks, perm, out_shape):
        """Bytes moved only: a reshape to 6-D ``blocks``, a transpose by ``perm``, a reshape to ``out_shape``."""
        split = self.emit("reshape", [self.name(node.input[0])], ReshapeAttrs(blocks), f"{node.output[0]}_blocks",
                          node.name or "blocks")
        moved = self.emit("transpose", [split], TransposeAttrs(perm), f"{node.output[0]}_moved", node.name or "moved")
        self.bind(node.output[0], self.emit("reshape", [moved], ReshapeAttrs(out_shape), node.output[0],
                                            node.name or "rearranged"))

    def DepthToSpace(self, node):
        """DCR (TensorFlow's order, ONNX's default): input channel (i * b + j) * C + c; CRD (PyTorch's
        PixelShuffle): c * b * b + i * b + j. In NHWC both are one 6-D transpose."""
        a = _attrs(node)
        block, mode = a["blocksize"], a.get("mode", b"DCR")
        _, height, width, channels = self.shape(node.input[0])
        depth = channels // (block * block)
        if mode in (b"CRD", "CRD"):
            blocks, perm = (1, height, width, depth, block, block), (0, 1, 4, 2, 5, 3)
        else:
            blocks, perm = (1, height, width, block, block, depth), (0, 1, 3, 2, 4, 5)
        self._rearranged(node, blocks, perm, (1, height * block, width * block, depth))

    def SpaceToDepth(self, node):
        block = _attrs(node)["blocksize"]
        _, height, width, channels = self.shape(node.input[0])
        self._rearranged(node, (1, height // block, block, width // block, block, channels), (0, 1, 3, 2, 4, 5),
                         (1, height // block, width // block, block * block * channels))

    def _clamp(self, node, activation):
        out = self.emit("clamp", [self.name(node.input[0])], ClampAttrs(activation), node.output[0],
                        node.name or activation)
        self.bind(node.output[0], out)

    def Relu(self, node):
        self._clamp(node, "relu")

    def Clip(self, node):
        a = _attrs(node)
        lo = float(self.const(node.input[1], node)) if len(node.input) > 1 and node.input[1] else a.get("min")
        hi = float(self.const(node.input[2], node)) if len(node.input) > 2 and node.input[2] else a.get("max")
        if lo == 0.0 and hi == 6.0:
            self._clamp(node, "relu6")
        elif lo == 0.0 and hi is None:
            self._clamp(node, "relu")
        elif lo is None and hi is None:
            self.bind(node.output[0], self.name(node.input[0]))
        else:
            self._bounded(node, lo, hi)

    def _bounded(self, node, lo, hi):
        """Any other clip (torch.clamp, Hardtanh): a maximum with ``lo`` and a minimum with ``hi``, constants
        that the quantizer gives their output's quantization (TensorFlow's converter does the same)."""
        value, out = self.name(node.input[0]), node.output[0]
        for op, bound in (("maximum", lo), ("minimum", hi)):
            if bound is not None:
                constant = self.add_constant(f"{out}_{op}", np.array(bound, np.float32))
                value = self.emit(op, [value, constant], ElementwiseAttrs(), f"{out}_{op}", node.name or op)
        self.bind(out, value)

    def Add(self, node):
        self._binary(node, "add")

    def _operand(self, onnx_name: str, other: str, node) -> str:
        """A binary op's operand in NHWC: an activation as it is; a constant broadcast against a 4-D
        (NCHW in the file) activation is brought to rank 4 and transposed, so (C,1,1) becomes (1,1,1,C)."""
        if onnx_name not in self.constants:
            return self.name(onnx_name)
        value = self.constants[onnx_name].astype(np.float32)
        if other not in self.constants and len(self.shape(other)) == 4 and value.ndim > 0:
            value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 2, 3, 1)
        return self.add_constant(f"{node.output[0]}_operand", np.ascontiguousarray(value))

    def _binary(self, node, op: str):
        a, b = node.input[:2]
        if a in self.constants and b in self.constants:
            raise UnsupportedOpError(f"ONNX node {node.name} ({node.op_type}): both operands are constants; "
                                     "fold them before exporting")
        ranks = {len(self.shape(n)) for n in (a, b) if n not in self.constants}
        if len(ranks) > 1:
            raise UnsupportedOpError(f"ONNX node {node.name} ({node.op_type}): operands of different ranks "
                                     "broadcast differently in NCHW and NHWC; reshape them to one rank")
        inputs = [self._operand(a, b, node), self._operand(b, a, node)]
        self.bind(node.output[0], self.emit(op, inputs, ElementwiseAttrs(), node.output[0], node.name or op))

    def Mul(self, node):
        self._binary(node, "mul")

    def Sub(self, node):
        self._binary(node, "sub")

    def Max(self, node):
        self._binary(node, "maximum")

    def Min(self, node):
        self._binary(node, "minimum")

    def PRelu(self, node):
        self._binary(node, "prelu")

    def _unary(self, node, op: str, attrs=None):
        out = self.emit(op, [self.name(node.input[0])], attrs or NoAttrs(), node.output[0], node.name or op)
        self.bind(node.output[0], out)

    def Sigmoid(self, node):
        self._unary(node, "logistic")

    def Tanh(self, node):
        self._unary(node, "tanh")

    def HardSwish(self, node):
        self._unary(node, "hard_swish")

    def HardSigmoid(self, node):
        """max(0, min(1, alpha x + beta)) = relu6(6 alpha x + 6 beta) / 6: a mul (left out when 6 alpha is
        1, as in PyTorch's Hardsigmoid), an add and a ReLU6 clamp, then a mul by 1/6, the ops TensorFlow's
        converter makes of Keras' hard_sigmoid."""
        a = _attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        x, out = self.name(node.input[0]), node.output[0]

        def scalar(op, operand, value):
            constant = self.add_constant(f"{out}_{op}", np.array(value, np.float32))
            return self.emit(op, [operand, constant], ElementwiseAttrs(), f"{out}_{op}", node.name or op)

        if abs(6 * alpha - 1) > 1e-7:
            x = scalar("mul", x, 6 * alpha)
        shifted = scalar("add", x, 6 * beta)
        clamped = self.emit("clamp", [shifted], ClampAttrs("relu6"), f"{out}_relu6", node.name or "relu6")
        self.bind(out, scalar("mul", clamped, 1 / 6))

    def LeakyRelu(self, node):
        self._unary(node, "leaky_relu", LeakyReluAttrs(float(_attrs(node).get("alpha", 0.01))))

    def _global_mean(self, node, keep_dims: bool):
        out = self.emit("mean", [self.name(node.input[0])], MeanAttrs((1, 2), keep_dims), node.output[0],
                        node.name or "mean")
        self.bind(node.output[0], out)

    def GlobalAveragePool(self, node):
        self._global_mean(node, True)

    def ReduceMean(self, node):
        a = _attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.const(node.input[1], node).tolist()
        rank = len(self.shape(node.input[0]))
        if rank != 4 or sorted(ax % 4 for ax in axes) != [2, 3]:
            raise UnsupportedOpError(f"ONNX node {node.name} (ReduceMean): only the mean over H and W of a 4-D "
                                     f"tensor is supported, got axes {axes}")
        self._global_mean(node, bool(a.get("keepdims", 1)))

    def _pool(self, node, op):
        a = _attrs(node)
        pads = a.get("pads", [0, 0, 0, 0])
        if a.get("ceil_mode", 0) or (op == "avg_pool2d" and a.get("count_include_pad", 0) and any(pads)):
            raise UnsupportedOpError(f"ONNX node {node.name} ({node.op_type}): ceil_mode and count_include_pad "
                                     "with padding are not supported")
        attrs = Pool2dAttrs(kernel=tuple(a["kernel_shape"]), stride=tuple(a.get("strides", (1, 1))),
                            padding=(pads[0], pads[1], pads[2], pads[3]))
        self.bind(node.output[0], self.emit(op, [self.name(node.input[0])], attrs, node.output[0],
                                            node.name or op))

    def MaxPool(self, node):
        self._pool(node, "max_pool2d")

    def AveragePool(self, node):
        self._pool(node, "avg_pool2d")

    def _flatten_to(self, node, new_shape: tuple):
        x = self.name(node.input[0])
        shape = self.graph.tensors[x].shape
        if len(shape) == 4 and shape[1] * shape[2] > 1:  # restore NCHW element order before flattening
            x = self.emit("transpose", [x], TransposeAttrs((0, 3, 1, 2)), f"{x}_nchw", f"{node.name}_nchw")
        out = self.emit("reshape", [x], ReshapeAttrs(tuple(int(d) for d in new_shape)), node.output[0],
                        node.name or "reshape")
        self.bind(node.output[0], out)

    def Flatten(self, node):
        shape = self.shape(node.input[0])
        axis = _attrs(node).get("axis", 1)
        self._flatten_to(node, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))

    def Reshape(self, node):
        target = [int(d) for d in self.const(node.input[1], node)]
        shape = self.shape(node.input[0])
        if len(target) != 2:
            raise UnsupportedOpError(f"ONNX node {node.name} (Reshape): only flattening reshapes to 2-D are "
                                     f"supported, got {target}")
        size = int(np.prod(shape))
        target = [shape[0] if d == 0 and i == 0 else d for i, d in enumerate(target)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target = [size // known if d == -1 else d for d in target]
        self._flatten_to(node, tuple(target))

    def Gemm(self, node):
        a = _attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise UnsupportedOpError(f"ONNX node {node.name} (Gemm): only Y = X W^T + b with alpha = beta = 1 "
                                     "is supported")
        w = self.const(node.input[1], node).astype(np.float32)
        self._fully_connected(node, w if a.get("transB", 0) else w.T,
                              node.input[2] if len(node.input) > 2 else None)

    def MatMul(self, node):
        self._fully_connected(node, self.const(node.input[1], node).astype(np.float32).T, None)

    def _fully_connected(self, node, weight_nk: np.ndarray, bias_name):
        inputs = [self.name(node.input[0]), self.add_constant(f"{node.output[0]}_weight",
                                                              np.ascontiguousarray(weight_nk))]
        if bias_name:
            inputs.append(self.add_constant(f"{node.output[0]}_bias",
                                            self.const(bias_name, node).astype(np.float32)))
        out = self.emit("fully_connected", inputs, FullyConnectedAttrs(), node.output[0], node.name or "fc")
        self.bind(node.output[0], out)

    def Concat(self, node):
        rank = len(self.shape(node.input[0]))
        axis = _attrs(node)["axis"] % rank
        axis = NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis
        out = self.emit("concat", [self.name(n) for n in node.input], ConcatAttrs(axis), node.output[0],
                        node.name or "concat")
        self.bind(node.output[0], out)

    def Softmax(self, node):
        rank = len(self.shape(node.input[0]))
        if _attrs(node).get("axis", -1) % rank != rank - 1:
            raise UnsupportedOpError(f"ONNX node {node.name} (Softmax): only the last axis is supported")
        out = self.emit("softmax", [self.name(node.input[0])], SoftmaxAttrs(), node.output[0],
                        node.name or "softmax")
        self.bind(node.output[0], out)

    def Identity(self, node):
        self.bind(node.output[0], self.name(node.input[0]))

    Dropout = Identity

    def Constant(self, node):
        pass  # collected in __init__

    def CastLike(self, node):
        """A constant cast to another tensor's type (torch exports ReLU6 bounds this way); folded here."""
        target = self.constants[node.input[1]].dtype if node.input[1] in self.constants else np.float32
        self.constants[node.output[0]] = self.const(node.input[0], node).astype(target)


def _nhwc_shape(dims) -> tuple:
    if len(dims) == 4:
        n, c, h, w = dims
        return (n, h, w, c)
    return tuple(dims)


def import_onnx(path) -> Graph:
    """Read an ONNX file into a float Graph in NHWC (batch 1)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(exc).__name__}); re-export it") from None
    with corrupt_file_errors(path):  # external data entries too: an offset "13883x08" (make fuzz)
        _load_external_data(model, path)
        return translate_onnx(model)


def _load_external_data(model, path: Path) -> None:
    """Weights kept beside the model (``save_as_external_data``) are read only from plain file names in
    the model's own folder: a location like ``../../etc/passwd`` is refused."""
    from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

    external = [t for t in model.graph.initializer if uses_external_data(t)]
    for tensor in external:
        location = ExternalDataInfo(tensor).location
        if not location or Path(location).name != location or location in (".", ".."):
            raise ModelFileError(f"{path}: weights of {tensor.name!r} are at {location!r}, outside the model's "
                                 "folder; keep external data files beside the model")
        if not (path.parent / location).is_file():
            raise ModelFileError(f"{path}: weights of {tensor.name!r} should be in {path.parent / location}, "
                                 "which does not exist")
    if external:
        load_external_data_for_model(model, str(path.parent))


def translate_onnx(model) -> Graph:
    t = _Translator(model)
    initializers = set(t.constants)
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if any(d <= 0 for d in dims):
            raise UnsupportedOpError(f"ONNX input {value.name} has dynamic shape {dims}; export with a fixed "
                                     "input shape (batch 1)")
        if dims[0] != 1:
            raise UnsupportedOpError(f"ONNX input {value.name} has batch {dims[0]}; edgekit compiles batch 1")
        t.graph.add_tensor(Tensor(value.name, _nhwc_shape(dims), "float32"))
        t.graph.inputs.append(value.name)
    for node in model.graph.node:
        handler = getattr(t, node.op_type, None)
        if handler is None:
            raise UnsupportedOpError(f"ONNX op {node.op_type} (node {node.name or node.output[0]}) is not "
                                     "supported by edgekit's ONNX importer")
        handler(node)
    t.graph.outputs = [t.name(o.name) for o in model.graph.output]
    t.graph.remove_unused_tensors()
    t.graph.lint()
    return t.graph
