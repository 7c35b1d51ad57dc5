"""Import a ``.tflite`` flatbuffer (float32 or int8) as an edgekit Graph.

Reading and converting are two steps. :func:`_read_model` walks the flatbuffer once and copies
everything the converters need (tensors, constant data, operator options) into plain objects, so a
truncated or corrupt file fails there, as one ModelFileError, and not halfway through a conversion.
The converters then map each TFLite builtin operator to edgekit ops, one function per operator.

TFLite int8 models already follow the IR's quantization spec, so quantization parameters are copied
unchanged (float32 scales); the int8 reference interpreter then reproduces TFLite's reference
kernels byte for byte.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.MirrorPadMode import MirrorPadMode
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.frontend.model_checks import corrupt_file_errors
from edgekit.ir import Graph, Node, QuantParams, Tensor
from edgekit.ops.add import AddAttrs
from edgekit.ops.arg_min_max import ArgMinMaxAttrs
from edgekit.ops.batch_matmul import BatchMatmulAttrs
from edgekit.ops.clamp import ClampAttrs
from edgekit.ops.mirror_pad import MirrorPadAttrs
from edgekit.ops.concat import ConcatAttrs
from edgekit.ops.conv2d import Conv2dAttrs
from edgekit.ops.depthwise_conv2d import DepthwiseConv2dAttrs
from edgekit.ops.elementwise import ElementwiseAttrs
from edgekit.ops.fully_connected import FullyConnectedAttrs
from edgekit.ops.gather import GatherAttrs
from edgekit.ops.leaky_relu import LeakyReluAttrs
from edgekit.ops.mean import MeanAttrs
from edgekit.ops.pad import PadAttrs
from edgekit.ops.pool2d import Pool2dAttrs
from edgekit.ops.quantize import NoAttrs
from edgekit.ops.reshape import ReshapeAttrs
from edgekit.ops.resize import ResizeAttrs
from edgekit.ops.softmax import SoftmaxAttrs
from edgekit.ops.strided_slice import StridedSliceAttrs
from edgekit.ops.transpose import TransposeAttrs
from edgekit.ops.transpose_conv import TransposeConvAttrs
from edgekit.ops.window import same_padding

_OP_NAMES = {code: name for name, code in vars(BuiltinOperator).items() if not name.startswith("_")}
_TYPE_NAMES = {code: name for name, code in vars(TensorType).items() if not name.startswith("_")}
_DTYPES = {TensorType.FLOAT32: np.float32, TensorType.INT32: np.int32, TensorType.INT8: np.int8,  # graph tensors
           TensorType.UINT8: np.uint8}  # uint8 only at the interface: see _check_uint8_interface
_CONSTANT_DTYPES = {**_DTYPES, TensorType.INT64: np.int64}  # int64 only for attributes (paddings, axes)
_ACTIVATIONS = {ActivationFunctionType.NONE: None, ActivationFunctionType.RELU: "relu",
                ActivationFunctionType.RELU6: "relu6", ActivationFunctionType.RELU_N1_TO_1: "relu_n1_to_1"}

# The options each supported operator reads: (flatbuffer table, fields), read eagerly by _read_model.
_WINDOW_FIELDS = ("Padding", "StrideH", "StrideW", "FusedActivationFunction")
_OPTION_FIELDS = {
    BuiltinOperator.CONV_2D: (tflite.Conv2DOptions, _WINDOW_FIELDS + ("DilationHFactor", "DilationWFactor")),
    BuiltinOperator.DEPTHWISE_CONV_2D: (tflite.DepthwiseConv2DOptions,
                                        _WINDOW_FIELDS + ("DilationHFactor", "DilationWFactor")),
    BuiltinOperator.FULLY_CONNECTED: (tflite.FullyConnectedOptions,
                                      ("FusedActivationFunction", "KeepNumDims", "WeightsFormat")),
    BuiltinOperator.ADD: (tflite.AddOptions, ("FusedActivationFunction",)),
    BuiltinOperator.AVERAGE_POOL_2D: (tflite.Pool2DOptions, _WINDOW_FIELDS + ("FilterHeight", "FilterWidth")),
    BuiltinOperator.MAX_POOL_2D: (tflite.Pool2DOptions, _WINDOW_FIELDS + ("FilterHeight", "FilterWidth")),
    BuiltinOperator.MEAN: (tflite.ReducerOptions, ("KeepDims",)),
    BuiltinOperator.REDUCE_MAX: (tflite.ReducerOptions, ("KeepDims",)),
    BuiltinOperator.SUM: (tflite.ReducerOptions, ("KeepDims",)),
    BuiltinOperator.MIRROR_PAD: (tflite.MirrorPadOptions, ("Mode",)),
    BuiltinOperator.REDUCE_MIN: (tflite.ReducerOptions, ("KeepDims",)),
    BuiltinOperator.CONCATENATION: (tflite.ConcatenationOptions, ("Axis", "FusedActivationFunction")),
    BuiltinOperator.SOFTMAX: (tflite.SoftmaxOptions, ("Beta",)),
    BuiltinOperator.MUL: (tflite.MulOptions, ("FusedActivationFunction",)),
    BuiltinOperator.SUB: (tflite.SubOptions, ("FusedActivationFunction",)),
    BuiltinOperator.LEAKY_RELU: (tflite.LeakyReluOptions, ("Alpha",)),
    BuiltinOperator.RESIZE_NEAREST_NEIGHBOR: (tflite.ResizeNearestNeighborOptions, ("AlignCorners", "HalfPixelCenters")),
    BuiltinOperator.RESIZE_BILINEAR: (tflite.ResizeBilinearOptions, ("AlignCorners", "HalfPixelCenters")),
    BuiltinOperator.STRIDED_SLICE: (tflite.StridedSliceOptions,
                                    ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask", "ShrinkAxisMask", "Offset")),
    BuiltinOperator.SPLIT: (tflite.SplitOptions, ("NumSplits",)),
    BuiltinOperator.SPLIT_V: (tflite.SplitVOptions, ("NumSplits",)),
    BuiltinOperator.TRANSPOSE_CONV: (tflite.TransposeConvOptions,
                                     ("Padding", "StrideH", "StrideW", "FusedActivationFunction")),
    BuiltinOperator.GATHER: (tflite.GatherOptions, ("Axis", "BatchDims")),
    BuiltinOperator.PACK: (tflite.PackOptions, ("Axis",)),
    BuiltinOperator.UNPACK: (tflite.UnpackOptions, ("Axis",)),
    BuiltinOperator.BATCH_MATMUL: (tflite.BatchMatMulOptions, ("AdjX", "AdjY")),
    BuiltinOperator.DEPTH_TO_SPACE: (tflite.DepthToSpaceOptions, ("BlockSize",)),
    BuiltinOperator.SPACE_TO_DEPTH: (tflite.SpaceToDepthOptions, ("BlockSize",)),
}


@dataclass
class _TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int
    quant: QuantParams | None
    data: np.ndarray | None  # constant data, typed and shaped; None for activations


@dataclass
class _Operator:
    index: int
    code: int
    name: str  # builtin operator name, or the custom op's name
    inputs: list[int]  # -1 marks an omitted optional input
    outputs: list[int]
    options: dict


@dataclass
class _Model:
    tensors: list[_TensorInfo]
    operators: list[_Operator]
    inputs: list[int]
    outputs: list[int]


def import_tflite(path) -> Graph:
    """Read the ``.tflite`` file at ``path`` and return its first subgraph as a linted Graph.

    Raises ModelFileError for a missing, truncated or non-TFLite file and UnsupportedOpError for
    operators, attributes or tensor types that edgekit cannot compile.
    """
    path = Path(path)
    model = _read_model(path)
    converter = _Converter(model, Graph(name=path.stem))
    current = None
    try:
        with corrupt_file_errors(path, lambda: f"operator {current.index} ({current.name})" if current else ""):
            for current in model.operators:
                convert = _CONVERTERS.get(current.code)
                if convert is None:
                    raise converter.unsupported(current, "is not supported; the TFLite importer supports "
                                                         f"{', '.join(sorted(_OP_NAMES[c] for c in _CONVERTERS))}")
                convert(converter, current)
            current = None
            graph = converter.graph
            graph.inputs = [converter.tensor(i) for i in model.inputs]
            graph.outputs = [converter.tensor(i) for i in model.outputs]
            _check_uint8_interface(graph)
            graph.lint()
    except UnsupportedOpError as exc:
        raise UnsupportedOpError(f"{path.name}: {exc}") from None
    return graph


def _check_uint8_interface(graph: Graph) -> None:
    """uint8 tensors may only be read or written by QUANTIZE and DEQUANTIZE (a uint8 model interface
    around int8 inside, as TFLite's converter writes it); the int8 kernels cannot run on them."""
    for node in graph.nodes:
        if node.op in ("quantize", "dequantize"):
            continue
        for name in node.inputs + node.outputs:
            if graph.tensors[name].dtype == "uint8":
                raise UnsupportedOpError(
                    f"node {node.name} ({node.op}) uses uint8 tensor {name!r}; edgekit runs uint8 only "
                    "at the model interface (QUANTIZE/DEQUANTIZE): convert the model to full-integer int8")


# --- reading --------------------------------------------------------------------------------------

def _read_model(path: Path) -> _Model:
    try:
        buffer = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None
    if len(buffer) < 8 or not tflite.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ModelFileError(f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
                             "pass a .tflite file")
    with corrupt_file_errors(path):
        model = tflite.Model.GetRootAs(buffer, 0)
        if model.SubgraphsLength() < 1:
            raise ModelFileError(f"{path}: the TFLite model has no subgraph")
        subgraph = model.Subgraphs(0)
        tensors = [_read_tensor(model, subgraph.Tensors(i), i, buffer) for i in range(subgraph.TensorsLength())]
        operators = [_read_operator(model, subgraph.Operators(i), i) for i in range(subgraph.OperatorsLength())]
        inputs = [int(i) for i in subgraph.InputsAsNumpy()]
        outputs = [int(i) for i in subgraph.OutputsAsNumpy()]
        for index in inputs + outputs + [i for op in operators for i in op.inputs + op.outputs if i != -1]:
            if not 0 <= index < len(tensors):
                raise ModelFileError(f"{path}: tensor index {index} is out of range (the subgraph has "
                                     f"{len(tensors)} tensors); re-export the model")
    return _Model(tensors, operators, inputs, outputs)


def _read_tensor(model, tensor, index: int, file_bytes: bytes) -> _TensorInfo:
    name = tensor.Name().decode("utf-8", errors="replace") if tensor.Name() else f"tensor{index}"
    shape = tuple(tensor.Shape(i) for i in range(tensor.ShapeLength()))
    quant = None
    q = tensor.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = q.ScaleAsNumpy()
        zero_point = q.ZeroPointAsNumpy() if q.ZeroPointLength() > 0 else np.zeros_like(scale, dtype=np.int64)
        quant = QuantParams(scale, zero_point, q.QuantizedDimension() if scale.size > 1 else None)
    raw = _buffer_bytes(model.Buffers(tensor.Buffer()), file_bytes)
    data = None
    if raw is not None and tensor.Type() in _CONSTANT_DTYPES:
        dtype = _CONSTANT_DTYPES[tensor.Type()]
        data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    return _TensorInfo(name, shape, tensor.Type(), quant, data)


def _buffer_bytes(buffer, file_bytes: bytes) -> bytes | None:
    """A constant's bytes: inline in the flatbuffer, or after it (offset/size, models over 2 GB)."""
    if buffer is None:
        return None
    if buffer.DataLength() > 0:
        return buffer.DataAsNumpy().tobytes()
    if buffer.Offset() > 1:
        end = buffer.Offset() + buffer.Size()
        if end > len(file_bytes):
            raise ValueError(f"buffer data ends at byte {end}, after the end of the file")
        return file_bytes[buffer.Offset():end]
    return None


def _read_operator(model, operator, index: int) -> _Operator:
    opcode = model.OperatorCodes(operator.OpcodeIndex())
    code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
    if code == BuiltinOperator.CUSTOM:
        name = f"custom op {opcode.CustomCode().decode('utf-8', errors='replace')!r}"
    else:
        name = _OP_NAMES.get(code, f"builtin operator {code}")
    options = {}
    if code in _OPTION_FIELDS:
        table_type, fields = _OPTION_FIELDS[code]
        table = operator.BuiltinOptions()
        if table is None:
            raise ValueError(f"operator {index} ({name}) has no options table")
        parsed = table_type()
        parsed.Init(table.Bytes, table.Pos)
        options = {field: getattr(parsed, field)() for field in fields}
    inputs = [int(i) for i in operator.InputsAsNumpy()] if operator.InputsLength() else []
    outputs = [int(i) for i in operator.OutputsAsNumpy()] if operator.OutputsLength() else []
    return _Operator(index, code, name, inputs, outputs, options)


# --- converting -----------------------------------------------------------------------------------

class _Converter:
    """Adds TFLite tensors to the graph on first use and appends nodes for each operator."""

    def __init__(self, model: _Model, graph: Graph):
        self.model = model
        self.graph = graph
        self.names: dict[int, str] = {}

    def info(self, index: int) -> _TensorInfo:
        return self.model.tensors[index]

    def output_name(self, op: _Operator) -> str:
        return self.info(op.outputs[0]).name if op.outputs else "?"

    def tensor(self, index: int) -> str:
        """The graph name of TFLite tensor ``index``, adding the tensor to the graph if needed."""
        if index not in self.names:
            info = self.info(index)
            if info.type not in _DTYPES:
                raise UnsupportedOpError(
                    f"tensor {info.name!r} has type {_TYPE_NAMES.get(info.type, info.type)}; edgekit supports "
                    "float32, int8, int32 and (at the interface) uint8 tensors: export the model as float32 or "
                    "full-integer int8"
                )
            name = self.graph.unique_name(info.name)
            quant = info.quant if info.type != TensorType.FLOAT32 else None
            self.graph.add_tensor(Tensor(name, info.shape, np.dtype(_DTYPES[info.type]).name, info.data, quant))
            self.names[index] = name
        return self.names[index]

    def constant(self, op: _Operator, position: int) -> np.ndarray:
        """The value of an attribute input (shape, paddings, axes, perm), which must be constant."""
        data = self.info(op.inputs[position]).data
        if data is None:
            raise self.unsupported(op, f"has a non-constant input {position}; edgekit needs static shapes")
        return data

    def new_tensor(self, like: int, shape: tuple, suffix: str) -> str:
        """A fresh activation with the dtype and quantization of TFLite tensor ``like``."""
        source = self.graph.tensors[self.tensor(like)]
        name = self.graph.unique_name(source.name + suffix)
        self.graph.add_tensor(Tensor(name, shape, source.dtype, None, source.quant))
        return name

    def add_node(self, op: _Operator, edgekit_op: str, inputs: list, output, attrs) -> None:
        """Append a node; ``inputs``/``output`` are TFLite tensor indices or graph tensor names."""
        names = [self.tensor(i) if isinstance(i, int) else i for i in inputs]
        out = self.tensor(output) if isinstance(output, int) else output
        node_name = self.graph.unique_name(f"{edgekit_op}_{op.index}")
        self.graph.nodes.append(Node(node_name, edgekit_op, names, [out], attrs))

    def activation(self, op: _Operator):
        code = op.options["FusedActivationFunction"]
        if code not in _ACTIVATIONS:
            names = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
            raise self.unsupported(op, f"has fused activation {names.get(code, code)}; edgekit supports NONE, RELU, "
                                       "RELU6 and RELU_N1_TO_1")
        return _ACTIVATIONS[code]

    def unsupported(self, op: _Operator, detail: str) -> UnsupportedOpError:
        """The error for an operator edgekit cannot import as written: names the operator, its output and why."""
        return UnsupportedOpError(f"operator {op.index} ({op.name}, output {self.output_name(op)!r}) {detail}")

    def data_inputs(self, op: _Operator, count: int) -> list[int]:
        """The first ``count`` inputs, leaving out omitted optional ones (index -1)."""
        return [i for i in op.inputs[:count] if i >= 0]


def _padding(op: _Operator, in_hw, kernel_hw, stride, dilation) -> tuple[int, int, int, int]:
    if op.options["Padding"] == Padding.VALID:
        return (0, 0, 0, 0)
    top, bottom = same_padding(in_hw[0], kernel_hw[0], stride[0], dilation[0])
    left, right = same_padding(in_hw[1], kernel_hw[1], stride[1], dilation[1])
    return (top, left, bottom, right)


def _window(conv: _Converter, op: _Operator, kernel_hw, dilation=(1, 1)):
    stride = (op.options["StrideH"], op.options["StrideW"])
    in_hw = conv.info(op.inputs[0]).shape[1:3]
    return stride, _padding(op, in_hw, kernel_hw, stride, dilation)


def _conv2d(conv: _Converter, op: _Operator) -> None:
    x_shape, w_shape = conv.info(op.inputs[0]).shape, conv.info(op.inputs[1]).shape
    groups = x_shape[3] // w_shape[3]
    if w_shape[3] * groups != x_shape[3] or w_shape[0] % groups:
        raise conv.unsupported(op, f"has {x_shape[3]} input channels for a filter depth of {w_shape[3]} and "
                                   f"{w_shape[0]} filters, which is no grouping")
    dilation = (op.options["DilationHFactor"], op.options["DilationWFactor"])
    stride, padding = _window(conv, op, w_shape[1:3], dilation)
    attrs = Conv2dAttrs(stride, dilation, padding, conv.activation(op))
    if groups == 1:
        conv.add_node(op, "conv2d", conv.data_inputs(op, 3), op.outputs[0], attrs)
    else:
        _grouped_conv2d(conv, op, groups, attrs)


def _channel_part(conv: _Converter, index: int, part: int, count: int) -> str:
    """Constant ``index`` (a filter or bias, output channels first) cut to its ``part`` of ``count``,
    with the per-channel scales of those channels."""
    tensor = conv.graph.tensors[conv.tensor(index)]
    size = tensor.shape[0] // count
    rows = slice(part * size, (part + 1) * size)
    quant = tensor.quant
    if quant is not None and quant.scale.size > 1:
        quant = QuantParams(quant.scale[rows], quant.zero_point[rows], quant.axis)
    data = np.ascontiguousarray(tensor.data[rows])
    return conv.graph.add_tensor(Tensor(conv.graph.unique_name(f"{tensor.name}_group{part}"), data.shape,
                                        tensor.dtype, data, quant)).name


def _grouped_conv2d(conv: _Converter, op: _Operator, groups: int, attrs: Conv2dAttrs) -> None:
    """A grouped CONV_2D (TFLite Micro's ConvPerChannel with groups): each group's input channels go to
    its own filters, so it is exactly a convolution per group on a channel slice, the outputs
    concatenated (every output channel keeps its multiplier; the parts share the output's
    quantization)."""
    x_shape, out_shape = conv.info(op.inputs[0]).shape, conv.info(op.outputs[0]).shape
    depth, filters = x_shape[3] // groups, out_shape[3] // groups
    parts = []
    for group in range(groups):
        channels = conv.new_tensor(op.inputs[0], x_shape[:3] + (depth,), f"_group{group}")
        ranges = tuple((0, d, 1) for d in x_shape[:3]) + ((group * depth, (group + 1) * depth, 1),)
        conv.add_node(op, "strided_slice", [op.inputs[0]], channels, StridedSliceAttrs(ranges))
        weights = [_channel_part(conv, index, group, groups) for index in conv.data_inputs(op, 3)[1:]]
        part = conv.new_tensor(op.outputs[0], out_shape[:3] + (filters,), f"_group{group}")
        conv.add_node(op, "conv2d", [channels] + weights, part, attrs)
        parts.append(part)
    conv.add_node(op, "concat", parts, op.outputs[0], ConcatAttrs(3))


def _depthwise_conv2d(conv: _Converter, op: _Operator) -> None:
    x_shape, w_shape = conv.info(op.inputs[0]).shape, conv.info(op.inputs[1]).shape
    dilation = (op.options["DilationHFactor"], op.options["DilationWFactor"])
    stride, padding = _window(conv, op, w_shape[1:3], dilation)
    # the file's depth_multiplier field is unreliable in old converters; the shapes are not
    attrs = DepthwiseConv2dAttrs(stride, dilation, padding, w_shape[3] // x_shape[3], conv.activation(op))
    conv.add_node(op, "depthwise_conv2d", conv.data_inputs(op, 3), op.outputs[0], attrs)


def _transpose_conv(conv: _Converter, op: _Operator) -> None:
    """TRANSPOSE_CONV's inputs are (output shape, filter, input[, bias]); its padding is TFLite Micro's
    ComputePaddingHeightWidth on the output size, as for a convolution from the output to the input."""
    out_hw = tuple(int(d) for d in conv.info(op.outputs[0]).shape[1:3])
    stride = (op.options["StrideH"], op.options["StrideW"])
    top, left, _, _ = _padding(op, out_hw, conv.info(op.inputs[1]).shape[1:3], stride, (1, 1))
    inputs = [op.inputs[2], op.inputs[1]] + [i for i in op.inputs[3:4] if i >= 0]
    attrs = TransposeConvAttrs(stride, (top, left), out_hw, conv.activation(op))
    conv.add_node(op, "transpose_conv", inputs, op.outputs[0], attrs)


def _pool2d(edgekit_op: str):
    def convert(conv: _Converter, op: _Operator) -> None:
        kernel = (op.options["FilterHeight"], op.options["FilterWidth"])
        stride, padding = _window(conv, op, kernel)
        conv.add_node(op, edgekit_op, op.inputs[:1], op.outputs[0],
                      Pool2dAttrs(kernel, stride, padding, conv.activation(op)))
    return convert


def _fully_connected(conv: _Converter, op: _Operator) -> None:
    """FULLY_CONNECTED on a [1, K] view of its input; reshapes around it when the shapes differ."""
    x, w, out = conv.info(op.inputs[0]), conv.info(op.inputs[1]), conv.info(op.outputs[0])
    if op.options["WeightsFormat"] != 0:
        raise conv.unsupported(op, "uses shuffled weights; export with the default weights format")
    units, depth = w.shape
    if int(np.prod(x.shape)) != depth:
        raise conv.unsupported(op, f"has input {x.shape}, not one row of {depth} values; edgekit compiles batch 1 only")
    x_name = conv.tensor(op.inputs[0])
    if x.shape != (1, depth):
        flat = conv.new_tensor(op.inputs[0], (1, depth), "_flat")
        conv.add_node(op, "reshape", [x_name], flat, ReshapeAttrs((1, depth)))
        x_name = flat
    inputs = [x_name] + conv.data_inputs(op, 3)[1:]
    attrs = FullyConnectedAttrs(conv.activation(op))
    if out.shape == (1, units):
        conv.add_node(op, "fully_connected", inputs, op.outputs[0], attrs)
        return
    rows = conv.new_tensor(op.outputs[0], (1, units), "_rows")
    conv.add_node(op, "fully_connected", inputs, rows, attrs)
    conv.add_node(op, "reshape", [rows], op.outputs[0], ReshapeAttrs(out.shape))


def _add(conv: _Converter, op: _Operator) -> None:
    conv.add_node(op, "add", op.inputs[:2], op.outputs[0], AddAttrs(conv.activation(op)))


def _reduction(edgekit_op: str):
    """MEAN, SUM, REDUCE_MAX and REDUCE_MIN: constant axes (negative ones count from the end), keep_dims."""
    def convert(conv: _Converter, op: _Operator) -> None:
        rank = len(conv.info(op.inputs[0]).shape)
        axes = tuple(sorted({int(a) % rank for a in np.ravel(conv.constant(op, 1))}))
        conv.add_node(op, edgekit_op, op.inputs[:1], op.outputs[0], MeanAttrs(axes, bool(op.options["KeepDims"])))
    return convert


def _arg_min_max(edgekit_op: str):
    """ARG_MAX/ARG_MIN(x, axis): int32 indices only, as TFLite Micro (an int64 output is its error)."""
    def convert(conv: _Converter, op: _Operator) -> None:
        if conv.info(op.outputs[0]).type != TensorType.INT32:
            raise conv.unsupported(op, "writes int64 indices; TFLite Micro writes int32 only: convert with "
                                       "tf.math.argmax(..., output_type=tf.int32)")
        rank = len(conv.info(op.inputs[0]).shape)
        axis = int(np.ravel(conv.constant(op, 1))[0]) % rank
        conv.add_node(op, edgekit_op, op.inputs[:1], op.outputs[0], ArgMinMaxAttrs(axis))
    return convert


def _pad(conv: _Converter, op: _Operator) -> None:
    """PAD, and PADV2 whose third input is the constant padding value (quantized like the output)."""
    pads = tuple((int(before), int(after)) for before, after in conv.constant(op, 1))
    value = 0.0
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        info = conv.info(op.inputs[2])
        raw = conv.constant(op, 2).reshape(-1)[:1]
        value = float((info.quant.dequantize(raw) if info.quant is not None else raw.astype(np.float32))[0])
    conv.add_node(op, "pad", op.inputs[:1], op.outputs[0], PadAttrs(pads, value))


def _mirror_pad(conv: _Converter, op: _Operator) -> None:
    """MIRROR_PAD(x, paddings) with mode REFLECT or SYMMETRIC."""
    pads = tuple((int(before), int(after)) for before, after in conv.constant(op, 1))
    mode = "reflect" if op.options["Mode"] == MirrorPadMode.REFLECT else "symmetric"
    conv.add_node(op, "mirror_pad", op.inputs[:1], op.outputs[0], MirrorPadAttrs(pads, mode))


def _reshape(conv: _Converter, op: _Operator) -> None:
    """RESHAPE to the output tensor's static shape (the optional shape input says the same)."""
    conv.add_node(op, "reshape", op.inputs[:1], op.outputs[0], ReshapeAttrs(conv.info(op.outputs[0]).shape))


def _transpose(conv: _Converter, op: _Operator) -> None:
    perm = tuple(int(p) for p in conv.constant(op, 1))
    conv.add_node(op, "transpose", op.inputs[:1], op.outputs[0], TransposeAttrs(perm))


def _space_depth(to_depth: bool):
    """SPACE_TO_DEPTH (``to_depth``) and DEPTH_TO_SPACE move bytes only: TFLite's
    out[h, w, (i * b + j) * C + c] = in[h * b + i, w * b + j, c] and its inverse are a reshape to 6-D,
    the transpose that swaps the block-row axis with the column axis, and a reshape back."""
    def convert(conv: _Converter, op: _Operator) -> None:
        block = op.options["BlockSize"]
        _, height, width, channels = conv.info(op.inputs[0]).shape
        blocks = ((1, height // block, block, width // block, block, channels) if to_depth else
                  (1, height, width, block, block, channels // (block * block)))
        _moved_blocks(conv, op, op.inputs[0], blocks, (0, 1, 3, 2, 4, 5), op.outputs[0])
    return convert


def _space_to_batch(conv: _Converter, op: _Operator) -> None:
    """SPACE_TO_BATCH_ND(x, block, paddings) on NHWC moves bytes only:
    out[(i * bw + j) * B + b, h, w, c] = x[b, h * bh + i, w * bw + j, c] as a reshape to 6-D, a
    transpose and a reshape back. Only without padding: TFLite Micro pads with params.output_offset,
    which it never sets (uninitialized arena bytes), so no padded output could match it."""
    (bh, bw), pads = (int(b) for b in conv.constant(op, 1).reshape(-1)), conv.constant(op, 2)
    if np.any(pads):
        raise conv.unsupported(op, f"pads by {pads.reshape(-1).tolist()}; TFLite Micro fills padding with an "
                                   "uninitialized value, so edgekit takes SPACE_TO_BATCH_ND without padding only: "
                                   "pad first (tf.pad), then space_to_batch_nd")
    batch, height, width, channels = conv.info(op.inputs[0]).shape
    _moved_blocks(conv, op, op.inputs[0], (batch, height // bh, bh, width // bw, bw, channels), (2, 4, 0, 1, 3, 5),
                  op.outputs[0])


def _batch_to_space(conv: _Converter, op: _Operator) -> None:
    """BATCH_TO_SPACE_ND(x, block, crops) on NHWC, the inverse: a reshape to 6-D, a transpose, a reshape
    back and the crops as a strided_slice."""
    (bh, bw), crops = (int(b) for b in conv.constant(op, 1).reshape(-1)), conv.constant(op, 2).reshape(2, 2)
    batch, height, width, channels = conv.info(op.inputs[0]).shape
    out_batch = batch // (bh * bw)
    full = (out_batch, height * bh, width * bw, channels)
    uncropped = conv.new_tensor(op.inputs[0], full, "_uncropped")
    _moved_blocks(conv, op, op.inputs[0], (bh, bw, out_batch, height, width, channels), (2, 3, 0, 4, 1, 5), uncropped)
    ranges = ((0, out_batch, 1), (int(crops[0][0]), full[1] - int(crops[0][1]), 1),
              (int(crops[1][0]), full[2] - int(crops[1][1]), 1), (0, channels, 1))
    conv.add_node(op, "strided_slice", [uncropped], op.outputs[0], StridedSliceAttrs(ranges))


def _moved_blocks(conv: _Converter, op: _Operator, source, blocks: tuple, perm: tuple, output) -> None:
    """``source`` reshaped to the 6-D ``blocks``, transposed by ``perm`` and reshaped to ``output``'s shape."""
    split = conv.new_tensor(op.inputs[0], blocks, "_blocks")
    conv.add_node(op, "reshape", [source], split, ReshapeAttrs(blocks))
    moved = conv.new_tensor(op.inputs[0], tuple(blocks[p] for p in perm), "_moved")
    conv.add_node(op, "transpose", [split], moved, TransposeAttrs(perm))
    out_shape = conv.graph.tensors[output].shape if isinstance(output, str) else conv.info(output).shape
    conv.add_node(op, "reshape", [moved], output, ReshapeAttrs(tuple(out_shape)))


def _batch_matmul(conv: _Converter, op: _Operator) -> None:
    attrs = BatchMatmulAttrs(bool(op.options["AdjX"]), bool(op.options["AdjY"]))
    conv.add_node(op, "batch_matmul", op.inputs[:2], op.outputs[0], attrs)


def _gather(conv: _Converter, op: _Operator) -> None:
    """GATHER with constant indices and batch_dims 0."""
    if op.options["BatchDims"]:
        raise conv.unsupported(op, "has batch_dims; edgekit gathers with batch_dims 0")
    shape = conv.info(op.inputs[0]).shape
    axis = op.options["Axis"] % len(shape)
    indices = conv.constant(op, 1).astype(np.int64)
    flat = tuple(int(i) for i in indices.reshape(-1))
    conv.add_node(op, "gather", op.inputs[:1], op.outputs[0], GatherAttrs(axis, flat, tuple(indices.shape)))


def _gather_nd(conv: _Converter, op: _Operator) -> None:
    """GATHER_ND with constant indices: each index vector picks one element (or slice) of the leading
    axes it names, so the input is reshaped with those axes merged into one and gathered along it."""
    shape = conv.info(op.inputs[0]).shape
    indices = conv.constant(op, 1).astype(np.int64)
    depth = indices.shape[-1]
    merged = (int(np.prod(shape[:depth], dtype=np.int64)),) + tuple(shape[depth:])
    flat = np.ravel_multi_index(tuple(np.moveaxis(indices, -1, 0)), shape[:depth])
    rows = conv.new_tensor(op.inputs[0], merged, "_rows")
    conv.add_node(op, "reshape", op.inputs[:1], rows, ReshapeAttrs(merged))
    conv.add_node(op, "gather", [rows], op.outputs[0],
                  GatherAttrs(0, tuple(int(i) for i in flat.reshape(-1)), tuple(indices.shape[:-1])))


def _concatenation(conv: _Converter, op: _Operator) -> None:
    if conv.activation(op) is not None:
        raise conv.unsupported(op, "has a fused activation; edgekit's concat has none")
    conv.add_node(op, "concat", op.inputs, op.outputs[0], ConcatAttrs(op.options["Axis"]))


def _softmax(conv: _Converter, op: _Operator) -> None:
    conv.add_node(op, "softmax", op.inputs[:1], op.outputs[0], SoftmaxAttrs(float(op.options["Beta"])))


def _binary(edgekit_op: str, fused_activation: bool = True):
    """Two-input elementwise operators; ``fused_activation``: the operator has that option."""
    def convert(conv: _Converter, op: _Operator) -> None:
        activation = conv.activation(op) if fused_activation else None
        conv.add_node(op, edgekit_op, op.inputs[:2], op.outputs[0], ElementwiseAttrs(activation))
    return convert


def _leaky_relu(conv: _Converter, op: _Operator) -> None:
    conv.add_node(op, "leaky_relu", op.inputs[:1], op.outputs[0], LeakyReluAttrs(float(op.options["Alpha"])))


def _resize(edgekit_op: str):
    def convert(conv: _Converter, op: _Operator) -> None:
        size = tuple(int(d) for d in conv.constant(op, 1))
        if op.options["AlignCorners"] and op.options["HalfPixelCenters"]:
            raise conv.unsupported(op, "sets both align_corners and half_pixel_centers, which TFLite rejects")
        attrs = ResizeAttrs(size, bool(op.options["AlignCorners"]), bool(op.options["HalfPixelCenters"]))
        conv.add_node(op, edgekit_op, op.inputs[:1], op.outputs[0], attrs)
    return convert


def _to_output_shape(conv: _Converter, op: _Operator) -> None:
    """SQUEEZE and EXPAND_DIMS: a reshape to the output tensor's static shape (same bytes)."""
    conv.add_node(op, "reshape", op.inputs[:1], op.outputs[0], ReshapeAttrs(conv.info(op.outputs[0]).shape))


def _strided_slice(conv: _Converter, op: _Operator) -> None:
    """STRIDED_SLICE with begin/end masks and shrink axes; Python's slice rules resolve each axis as TF does."""
    o = op.options
    if o["EllipsisMask"] or o["NewAxisMask"] or o["Offset"]:
        raise conv.unsupported(op, "uses an ellipsis, new-axis or offset mask; edgekit supports begin, end and "
                                   "shrink masks")
    shape = conv.info(op.inputs[0]).shape
    begin, end, strides = (conv.constant(op, i).reshape(-1) for i in (1, 2, 3))
    ranges, squeeze = [], []
    for axis, size in enumerate(shape[:len(begin)]):
        if o["ShrinkAxisMask"] >> axis & 1:
            index = int(begin[axis]) % size
            ranges.append((index, index + 1, 1))
            squeeze.append(axis)
            continue
        start = None if o["BeginMask"] >> axis & 1 else int(begin[axis])
        stop = None if o["EndMask"] >> axis & 1 else int(end[axis])
        kept = range(size)[slice(start, stop, int(strides[axis]))]
        if len(kept) == 0:
            raise conv.unsupported(op, f"selects nothing along axis {axis}; edgekit needs non-empty tensors")
        ranges.append((kept.start, kept.stop, kept.step))
    conv.add_node(op, "strided_slice", op.inputs[:1], op.outputs[0], StridedSliceAttrs(tuple(ranges), tuple(squeeze)))


def _slice(conv: _Converter, op: _Operator) -> None:
    """SLICE(begin, size) as a strided_slice (size -1: to the end)."""
    shape = conv.info(op.inputs[0]).shape
    begin, size = conv.constant(op, 1).reshape(-1), conv.constant(op, 2).reshape(-1)
    ranges = tuple((int(b), int(shape[a]) if s < 0 else int(b + s), 1) for a, (b, s) in enumerate(zip(begin, size)))
    conv.add_node(op, "strided_slice", op.inputs[:1], op.outputs[0], StridedSliceAttrs(ranges))


def _reverse(conv: _Converter, op: _Operator) -> None:
    """REVERSE_V2(x, axes) as a strided_slice stepping -1 over those axes (negative ones count from the end)."""
    shape = conv.info(op.inputs[0]).shape
    axes = {int(a) % len(shape) for a in conv.constant(op, 1).reshape(-1)}
    ranges = tuple((int(d) - 1, -1, -1) if a in axes else (0, int(d), 1) for a, d in enumerate(shape))
    conv.add_node(op, "strided_slice", op.inputs[:1], op.outputs[0], StridedSliceAttrs(ranges))


def _split_parts(conv: _Converter, op: _Operator, data: int, axis: int, sizes, squeeze: bool = False) -> None:
    """One strided_slice node per output of SPLIT/SPLIT_V (and UNPACK: parts of 1, ``squeeze``d)."""
    rank = len(conv.info(data).shape)
    axis %= rank
    start = 0
    for output, size in zip(op.outputs, sizes):
        ranges = tuple((start, start + size, 1) if a == axis else (0, conv.info(data).shape[a], 1) for a in range(rank))
        conv.add_node(op, "strided_slice", [data], output, StridedSliceAttrs(ranges, (axis,) if squeeze else ()))
        start += size


def _unpack(conv: _Converter, op: _Operator) -> None:
    """UNPACK(x, axis): every index of the axis, the axis dropped."""
    _split_parts(conv, op, op.inputs[0], op.options["Axis"], [1] * len(op.outputs), squeeze=True)


def _pack(conv: _Converter, op: _Operator) -> None:
    """PACK(values, axis): each value reshaped with a new axis of 1 there, then one concat (the
    converter gives every value the output's quantization, as a concat needs)."""
    out_shape = conv.info(op.outputs[0]).shape
    axis = op.options["Axis"] % len(out_shape)
    one = out_shape[:axis] + (1,) + out_shape[axis + 1:]
    parts = []
    for value in op.inputs:
        part = conv.new_tensor(value, one, "_packed")
        conv.add_node(op, "reshape", [value], part, ReshapeAttrs(one))
        parts.append(part)
    conv.add_node(op, "concat", parts, op.outputs[0], ConcatAttrs(axis))


def _split(conv: _Converter, op: _Operator) -> None:
    """SPLIT(axis, x) into NumSplits equal parts."""
    data, axis = op.inputs[1], int(conv.constant(op, 0).reshape(-1)[0])
    length = conv.info(data).shape[axis]
    count = op.options["NumSplits"]
    if count <= 0 or length % count:
        raise conv.unsupported(op, f"splits an axis of {length} into {count} parts")
    _split_parts(conv, op, data, axis, [length // count] * count)


def _split_v(conv: _Converter, op: _Operator) -> None:
    """SPLIT_V(x, sizes, axis); one size may be -1 (the rest)."""
    data, axis = op.inputs[0], int(conv.constant(op, 2).reshape(-1)[0])
    length = conv.info(data).shape[axis]
    sizes = [int(s) for s in conv.constant(op, 1).reshape(-1)]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = length - sum(s for s in sizes if s >= 0)
    if sum(sizes) != length or min(sizes) <= 0:
        raise conv.unsupported(op, f"splits an axis of {length} into parts {sizes}")
    _split_parts(conv, op, data, axis, sizes)


def _unary(edgekit_op: str):
    def convert(conv: _Converter, op: _Operator) -> None:
        conv.add_node(op, edgekit_op, op.inputs[:1], op.outputs[0], NoAttrs())
    return convert


def _relu(activation: str):
    """RELU/RELU6 -> clamp, which keeps its input's quantization.

    TFLite Micro's RELU requantizes to the output's parameters; where those differ, that is exactly a
    leaky_relu with alpha 0 (same identity multiplier, negative inputs give the output zero point).
    Its RELU6 clamps in the input's parameters and ignores the output's, which edgekit cannot express.
    """
    def convert(conv: _Converter, op: _Operator) -> None:
        q_in, q_out = conv.info(op.inputs[0]).quant, conv.info(op.outputs[0]).quant
        if q_in is not None and q_out is not None and (
                not np.array_equal(q_in.scale, q_out.scale) or not np.array_equal(q_in.zero_point, q_out.zero_point)):
            if activation != "relu":
                raise conv.unsupported(op, "changes the quantization of its input; edgekit's clamp keeps it")
            conv.add_node(op, "leaky_relu", op.inputs[:1], op.outputs[0], LeakyReluAttrs(0.0))
            return
        conv.add_node(op, "clamp", op.inputs[:1], op.outputs[0], ClampAttrs(activation))
    return convert


_CONVERTERS = {
    BuiltinOperator.CONV_2D: _conv2d,
    BuiltinOperator.DEPTHWISE_CONV_2D: _depthwise_conv2d,
    BuiltinOperator.FULLY_CONNECTED: _fully_connected,
    BuiltinOperator.ADD: _add,
    BuiltinOperator.AVERAGE_POOL_2D: _pool2d("avg_pool2d"),
    BuiltinOperator.MAX_POOL_2D: _pool2d("max_pool2d"),
    BuiltinOperator.MEAN: _reduction("mean"),
    BuiltinOperator.REDUCE_MAX: _reduction("reduce_max"),
    BuiltinOperator.SUM: _reduction("sum"),
    BuiltinOperator.REDUCE_MIN: _reduction("reduce_min"),
    BuiltinOperator.PAD: _pad,
    BuiltinOperator.RESHAPE: _reshape,
    BuiltinOperator.TRANSPOSE: _transpose,
    BuiltinOperator.CONCATENATION: _concatenation,
    BuiltinOperator.SOFTMAX: _softmax,
    BuiltinOperator.QUANTIZE: _unary("quantize"),
    BuiltinOperator.DEQUANTIZE: _unary("dequantize"),
    BuiltinOperator.RELU: _relu("relu"),
    BuiltinOperator.RELU6: _relu("relu6"),
    BuiltinOperator.MUL: _binary("mul"),
    BuiltinOperator.SUB: _binary("sub"),
    BuiltinOperator.SQUARED_DIFFERENCE: _binary("squared_difference", fused_activation=False),
    BuiltinOperator.MAXIMUM: _binary("maximum", fused_activation=False),
    BuiltinOperator.MINIMUM: _binary("minimum", fused_activation=False),
    BuiltinOperator.PRELU: _binary("prelu", fused_activation=False),
    BuiltinOperator.LEAKY_RELU: _leaky_relu,
    BuiltinOperator.HARD_SWISH: _unary("hard_swish"),
    BuiltinOperator.LOGISTIC: _unary("logistic"),
    BuiltinOperator.TANH: _unary("tanh"),
    BuiltinOperator.ABS: _unary("abs"),
    BuiltinOperator.RSQRT: _unary("rsqrt"),
    BuiltinOperator.ARG_MAX: _arg_min_max("arg_max"),
    BuiltinOperator.ARG_MIN: _arg_min_max("arg_min"),
    BuiltinOperator.RESIZE_NEAREST_NEIGHBOR: _resize("resize_nearest"),
    BuiltinOperator.RESIZE_BILINEAR: _resize("resize_bilinear"),
    BuiltinOperator.PADV2: _pad,
    BuiltinOperator.MIRROR_PAD: _mirror_pad,
    BuiltinOperator.SQUEEZE: _to_output_shape,
    BuiltinOperator.EXPAND_DIMS: _to_output_shape,
    BuiltinOperator.STRIDED_SLICE: _strided_slice,
    BuiltinOperator.SLICE: _slice,
    BuiltinOperator.SPACE_TO_BATCH_ND: _space_to_batch,
    BuiltinOperator.BATCH_TO_SPACE_ND: _batch_to_space,
    BuiltinOperator.REVERSE_V2: _reverse,
    BuiltinOperator.SPLIT: _split,
    BuiltinOperator.SPLIT_V: _split_v,
    BuiltinOperator.TRANSPOSE_CONV: _transpose_conv,
    BuiltinOperator.GATHER: _gather,
    BuiltinOperator.GATHER_ND: _gather_nd,
    BuiltinOperator.PACK: _pack,
    BuiltinOperator.UNPACK: _unpack,
    BuiltinOperator.L2_NORMALIZATION: _unary("l2_normalization"),
    BuiltinOperator.BATCH_MATMUL: _batch_matmul,
    BuiltinOperator.DEPTH_TO_SPACE: _space_depth(to_depth=False),
    BuiltinOperator.SPACE_TO_DEPTH: _space_depth(to_depth=True),
}
