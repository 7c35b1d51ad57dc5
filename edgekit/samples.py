"""Model inputs from what a user has: a folder of images and/or .npy files, a stacked .npy, or one file.

Images are preprocessed as the model expects (its Preprocess) to float; an int8 model's inputs are
then quantized with its input scale and zero point. A .npy must already be in the model's input
layout (NHWC); a 3-channel NCHW array is transposed once, here.
"""

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_INPUT_FILE_BYTES = 4 << 30


def _image_to_input(path: Path, model) -> np.ndarray:
    from edgekit.frontend.images import load_image

    pre = model.preprocess
    if pre is None:
        raise EdgekitError(f"{path}: this model's input is not an image; pass .npy inputs instead")
    return load_image(path, (pre.height, pre.width), crop_fraction=pre.crop_fraction, mean=pre.mean, std=pre.std)


def _stacked(array: np.ndarray, shape: tuple, source) -> list[np.ndarray]:
    """One input or N stacked inputs, in the model's layout or (4-D image models) NCHW.

    The layout is decided from the array's trailing axes, on the whole array, so a stack of NCHW
    images is transposed rather than reshaped; anything else is refused rather than guessed.
    """
    per_input = tuple(shape[1:])  # the batch axis of the model input is 1
    nchw = (shape[3], shape[1], shape[2]) if len(shape) == 4 else None
    if array.shape[-len(per_input):] == per_input:
        batch = array.reshape((-1,) + per_input)
    elif nchw and nchw != per_input and array.shape[-3:] == nchw:
        batch = np.ascontiguousarray(array.reshape((-1,) + nchw).transpose(0, 2, 3, 1))
    else:
        raise EdgekitError(f"{source}: an array of shape {array.shape} is neither inputs of shape {shape} (NHWC) "
                           f"nor NCHW images of that size; save it as [N, {', '.join(map(str, per_input))}]")
    return [x.reshape(shape) for x in batch]


def _folder_files(path: Path) -> list[Path]:
    """The images and .npy files of a folder (sorted), or the one file named."""
    if not path.exists():
        raise EdgekitError(f"input path {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".npy",)) \
        if path.is_dir() else [path]
    if not files:
        raise EdgekitError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) or .npy files")
    return files


def load_inputs(source, model, for_float: bool = False, limit: int | None = None) -> list[np.ndarray]:
    """Inputs for ``model`` as a list of arrays in the graph input's dtype (float if ``for_float``).

    ``source`` is a folder, one file, or a list of files (e.g. ``sample_photos()``)."""
    graph = model.graph
    tensor = graph.tensors[graph.inputs[0]]
    files = list(map(Path, source)) if isinstance(source, (list, tuple)) else _folder_files(Path(source))
    inputs = []
    for f in files:
        if f.suffix.lower() == ".npy":
            inputs += [_as_model_dtype(x, tensor, for_float, f) for x in _stacked(_read_array(f), tensor.shape, f)]
        else:
            inputs.append(_as_model_dtype(_image_to_input(f, model), tensor, for_float, f))
    if not inputs:
        raise EdgekitError(f"{source} holds no inputs (an empty array?)")
    return inputs[:limit] if limit else inputs


def _read_array(path: Path) -> np.ndarray:
    """A .npy file's array, checked (npy_file.read_npy), with finite values."""
    from edgekit.npy_file import read_npy

    if not path.is_file():
        raise EdgekitError(f"{path} is not a regular file; give a .npy file saved with np.save")
    _check_input_file(path)
    return _finite(read_npy(path.read_bytes(), path), path)


def _check_input_file(path: Path) -> None:
    if path.stat().st_size > MAX_INPUT_FILE_BYTES:
        raise EdgekitError(f"{path} is {path.stat().st_size:,} B, over the {MAX_INPUT_FILE_BYTES:,} B edgekit "
                           "reads as inputs; split it")


def _finite(array: np.ndarray, source) -> np.ndarray:
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise EdgekitError(f"{source} holds NaN or infinite values; inputs must be finite")
    return array


def load_input_set(path, model, for_float: bool = False) -> list[np.ndarray]:
    """One inference's inputs from a ``.npz`` holding an array per graph input, keyed ``input_0``,
    ``input_1``... in the model's input order (``io_records.input_keys``), each in that input's layout
    and converted to its dtype as single inputs are. For models with several inputs."""
    from edgekit.io_records import input_keys
    from edgekit.npy_file import read_npz

    graph = model.graph
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise EdgekitError(f"{path}: {model.name} has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); give one "
                           f".npz with the arrays {', '.join(input_keys(graph))}, in that order")
    if not path.is_file():
        raise EdgekitError(f"input path {path} does not exist")
    _check_input_file(path)
    arrays = read_npz(path)
    missing = [key for key in input_keys(graph) if key not in arrays]
    if missing:
        raise EdgekitError(f"{path} has no array {missing[0]}; it holds {', '.join(arrays) or 'nothing'}, "
                           f"and {model.name} needs {', '.join(input_keys(graph))} (its inputs in order)")
    inputs = []
    for key, name in zip(input_keys(graph), graph.inputs):
        tensor = graph.tensors[name]
        batch = _stacked(_finite(arrays[key], f"{path}[{key}]"), tensor.shape, f"{path}[{key}]")
        if len(batch) != 1:
            raise EdgekitError(f"{path}[{key}] holds {len(batch)} inputs; give one array per input (one inference)")
        inputs.append(_as_model_dtype(batch[0], tensor, for_float, f"{path}[{key}]"))
    return inputs


def _as_model_dtype(x: np.ndarray, tensor, for_float: bool, source) -> np.ndarray:
    """``x`` in the input's dtype: float values are quantized for an int8 or uint8 input, integer
    values dequantized for the float reference (``for_float``)."""
    wants_integer = tensor.dtype in ("int8", "uint8") and not for_float
    if wants_integer and x.dtype != np.dtype(tensor.dtype):
        if x.dtype.kind != "f":
            raise EdgekitError(f"{source}: {x.dtype} input for a {tensor.dtype} model; give {tensor.dtype} or float "
                               "values")
        return tensor.quant.quantize(x, np.dtype(tensor.dtype))
    if not wants_integer and x.dtype.kind in "iu" and tensor.quant is not None:
        return tensor.quant.dequantize(x)
    return x if wants_integer else x.astype(np.float32)
