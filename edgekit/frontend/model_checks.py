"""What every importer checks in what it read, so a corrupt or hostile model file ends in one
ModelFileError that names the file, the tensor or node, and the problem, never in a traceback
from deep inside the quantizer or the planner.

Two layers: ``corrupt_file_errors`` turns the low-level exceptions a parser or converter raises on
inconsistent data (an index out of range, a division by a zero stride, a wrong type) into a
ModelFileError; ``check_imported_graph`` then checks the graph an importer built: tensor shapes and
sizes, constant data, quantization parameters (scales, zero points, channel axes), attribute values
(strides, kernels, dilations, paddings) and, through ``Graph.lint``, that every node's inferred shapes
match its tensors.
"""

import contextlib
import dataclasses
import struct
import zipfile
import zlib

import numpy as np

from edgekit.errors import EdgekitError, GraphError, ModelFileError

MAX_RANK = 6
MAX_TENSOR_BYTES = 1 << 30  # 1 GiB: far above any model for a microcontroller, far below what breaks the host
MAX_PADDING = 1 << 16
ATTRIBUTES_AT_LEAST_ONE = ("stride", "dilation", "kernel", "depth_multiplier")
ATTRIBUTES_AT_LEAST_ZERO = ("padding", "pads")

# what parsers and converters raise on data that contradicts itself
# (NotImplementedError: zipfile on a member whose header claims a zip version or compression it lacks)
PARSE_ERRORS = (ArithmeticError, LookupError, ValueError, TypeError, AttributeError, struct.error, UnicodeError,
                EOFError, MemoryError, RecursionError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError)


@contextlib.contextmanager
def corrupt_file_errors(source, where=lambda: ""):
    """Re-raise a parse error inside the block as one ModelFileError about ``source``; ``where()`` may name
    the operator being read (called only on error)."""
    try:
        yield
    except EdgekitError:
        raise
    except PARSE_ERRORS as error:
        detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        place = where()
        raise ModelFileError(f"{source}{': ' + place if place else ''} is truncated or corrupt "
                             f"({type(error).__name__}{': ' + detail if detail else ''}); re-export the model"
                             ) from None


def check_imported_graph(graph, source) -> None:
    """Raise ModelFileError for the first thing in ``graph`` that edgekit cannot trust (see module doc)."""
    with corrupt_file_errors(source):
        _check_graph(graph, source)


def _check_graph(graph, source) -> None:
    if not graph.inputs or not graph.outputs:
        raise ModelFileError(f"{source}: the model has no {'inputs' if not graph.inputs else 'outputs'}")
    for tensor in graph.tensors.values():
        _check_tensor(tensor, source)
    for name in graph.inputs:
        if name in graph.tensors and graph.tensors[name].is_constant:
            raise ModelFileError(f"{source}: graph input {name!r} is a constant")
    for node in graph.nodes:
        _check_attributes(node, source)
    try:
        graph.lint()
    except GraphError as error:
        raise ModelFileError(f"{source}: {error}") from None


def _check_tensor(tensor, source) -> None:
    shape = tensor.shape
    if len(shape) > MAX_RANK or any(d <= 0 for d in shape):
        raise ModelFileError(f"{source}: tensor {tensor.name!r} has shape {list(shape)}; edgekit needs static "
                             f"positive dimensions (rank at most {MAX_RANK})")
    if tensor.nbytes > MAX_TENSOR_BYTES:
        raise ModelFileError(f"{source}: tensor {tensor.name!r} of shape {list(shape)} needs {tensor.nbytes:,} B, "
                             f"over the {MAX_TENSOR_BYTES:,} B a tensor may have")
    if tensor.is_constant:
        data = tensor.data
        if tuple(data.shape) != shape or str(data.dtype) != tensor.dtype:
            raise ModelFileError(f"{source}: constant {tensor.name!r} holds {data.dtype} {list(data.shape)} but is "
                                 f"declared {tensor.dtype} {list(shape)}")
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise ModelFileError(f"{source}: constant {tensor.name!r} holds NaN or infinite values")
    if tensor.dtype == "int8" and tensor.quant is None:
        raise ModelFileError(f"{source}: int8 tensor {tensor.name!r} has no quantization parameters")
    if tensor.quant is not None and tensor.dtype != "float32":
        _check_quant(tensor, source)


def _zero_point_range(dtype: str) -> tuple[int, int]:
    """8-bit tensors take any zero point of their type; int16 activations and int32 biases take 0."""
    if dtype in ("int8", "uint8"):
        info = np.iinfo(dtype)
        return int(info.min), int(info.max)
    return 0, 0


def _check_quant(tensor, source) -> None:
    quant, name = tensor.quant, tensor.name
    scale, zero_point = quant.scale, quant.zero_point
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0) or np.any(scale < 1e-30):
        raise ModelFileError(f"{source}: tensor {name!r} has scale {scale[:4].tolist()}; scales must be positive "
                             "and finite")
    limits = _zero_point_range(tensor.dtype)
    if zero_point.size == 0 or np.any(zero_point < limits[0]) or np.any(zero_point > limits[1]):
        raise ModelFileError(f"{source}: tensor {name!r} ({tensor.dtype}) has zero point {zero_point[:4].tolist()}; "
                             f"expected values in [{limits[0]}, {limits[1]}]")
    if scale.size > 1 or quant.axis is not None:
        axis = quant.axis
        if axis is None or not 0 <= axis < len(tensor.shape):
            raise ModelFileError(f"{source}: tensor {name!r} has {scale.size} scales but channel axis {axis} "
                                 f"for shape {list(tensor.shape)}")
        if scale.size not in (1, tensor.shape[axis]) or zero_point.size not in (1, scale.size):
            raise ModelFileError(f"{source}: tensor {name!r} has {scale.size} scales and {zero_point.size} zero "
                                 f"points for {tensor.shape[axis]} channels (axis {axis})")
    elif zero_point.size != 1:
        raise ModelFileError(f"{source}: tensor {name!r} has one scale but {zero_point.size} zero points")


def _check_attributes(node, source) -> None:
    """Attribute values no op accepts: strides, kernels, dilations below 1, negative paddings, unknown
    activations, non-finite floats (by field name, the same across op definitions)."""
    from edgekit.ops.base import ACTIVATIONS

    if node.attrs is None or not dataclasses.is_dataclass(node.attrs):
        return
    for field in dataclasses.fields(node.attrs):
        value = getattr(node.attrs, field.name)
        if field.name == "activation" and value not in ACTIVATIONS:
            raise ModelFileError(f"{source}: node {node.name} ({node.op}) has activation {value!r}; expected one of "
                                 f"{', '.join(map(str, ACTIVATIONS))}")
        if isinstance(value, float) and not np.isfinite(value):
            raise ModelFileError(f"{source}: node {node.name} ({node.op}) has {field.name} {value}")
        if field.name not in ATTRIBUTES_AT_LEAST_ONE + ATTRIBUTES_AT_LEAST_ZERO:
            continue
        lowest = 1 if field.name in ATTRIBUTES_AT_LEAST_ONE else 0
        values = np.ravel(np.asarray(value, dtype=object)).tolist()
        if not all(isinstance(v, (int, np.integer)) and lowest <= v <= MAX_PADDING for v in values):
            raise ModelFileError(f"{source}: node {node.name} ({node.op}) has {field.name} {value!r}; expected "
                                 f"integers from {lowest} to {MAX_PADDING:,}")
