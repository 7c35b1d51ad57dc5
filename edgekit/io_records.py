"""A model's inputs and outputs as the firmware's byte records, and as the files users exchange.

The firmware harness reads one record of EK_INPUT_SIZE bytes per inference and writes one of
EK_OUTPUT_SIZE bytes: the graph input's bytes in its own dtype (int8, or float32 for a model whose
interface is float), and the graph outputs' bytes one after the other in the model's output order.
The same outputs go to users as one ``.npy`` (one output) or one ``.npz`` holding an array per
output, keyed ``output_0``, ``output_1``... in the model's output order (``edgekit infer`` and
``edgekit run --outputs``; ``run`` stacks each output over its N inputs). A model with several
inputs takes them, for ``edgekit infer``, as one ``.npz`` keyed ``input_0``, ``input_1``... in the
model's input order; the firmware takes models with one input (``require_one_input``).
"""

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError


def require_one_input(graph, source) -> None:
    """The firmware, its harness and calibration feed one input tensor: refuse other models by name."""
    if len(graph.inputs) != 1:
        keys = ", ".join(input_keys(graph))
        raise EdgekitError(f"{source}: the model has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); "
                           f"compile and quantize take models with one input; `edgekit infer {source} --input X.npz` "
                           f"runs it (arrays {keys})")


def input_records(graph, inputs) -> np.ndarray:
    """N inputs (a list or a stacked array, in the graph input's dtype) -> int8 [N, input bytes]."""
    tensor = graph.tensors[graph.inputs[0]]
    batch = np.ascontiguousarray(np.stack([np.asarray(x, dtype=tensor.dtype).reshape(tensor.shape) for x in inputs]))
    return batch.reshape(len(batch), -1).view(np.int8)


def output_record_bytes(graph) -> int:
    """EK_OUTPUT_SIZE: every graph output's bytes, concatenated."""
    return sum(graph.tensors[name].nbytes for name in graph.outputs)


def split_output_records(graph, records: np.ndarray) -> list[np.ndarray]:
    """int8 [N, EK_OUTPUT_SIZE] -> per graph output, its N values stacked [N, *shape] in its dtype."""
    records = np.ascontiguousarray(records).reshape(len(records), -1)
    outputs, start = [], 0
    for name in graph.outputs:
        tensor = graph.tensors[name]
        chunk = np.ascontiguousarray(records[:, start:start + tensor.nbytes])
        outputs.append(chunk.view(np.dtype(tensor.dtype)).reshape((len(records),) + tuple(tensor.shape)))
        start += tensor.nbytes
    return outputs


def input_keys(graph) -> list[str]:
    """The ``.npz`` key of each graph input of a model with several inputs, in the model's input order."""
    return [f"input_{i}" for i in range(len(graph.inputs))]


def output_keys(graph) -> list[str]:
    """The ``.npz`` key of each graph output, in the model's output order."""
    return [f"output_{i}" for i in range(len(graph.outputs))]


def check_output_path(graph, path) -> None:
    """A model with several outputs writes a .npz; refuse a .npy path before any work is done."""
    if len(graph.outputs) > 1 and Path(path).suffix.lower() != ".npz":
        raise EdgekitError(f"{path}: the model has {len(graph.outputs)} outputs; pass an --output file ending in "
                           ".npz (one array per output, keys output_0..)")


def save_outputs(graph, outputs: list[np.ndarray], path) -> None:
    """One output -> ``.npy`` (or ``.npz`` if the path says so); several -> ``.npz`` (``output_keys``)."""
    path = Path(path)
    with path.open("wb") as file:
        if len(outputs) == 1 and path.suffix.lower() != ".npz":
            np.save(file, outputs[0])
        else:
            np.savez(file, **dict(zip(output_keys(graph), outputs)))
