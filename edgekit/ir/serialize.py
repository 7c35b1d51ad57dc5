"""Save and load a Graph as one ``.ek`` file (a zip: graph.json plus the constants as .npy).

The format is plain data so later steps (`edgekit compile`, `run`, `report`) can start from a saved
graph without the framework it came from. graph.json also keeps how an image becomes the model's
input (size, crop, mean and std), so `edgekit infer x.ek --input photo.jpg` feeds what the original
model was fed.
"""

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from edgekit.errors import ModelFileError
from edgekit.ir.graph import Graph, Node
from edgekit.ir.tensor import QuantParams, Tensor
from edgekit.npy_file import read_npy
from edgekit.ops import get_op

FORMAT = "edgekit-graph/1"
MAX_MEMBER_BYTES = 1 << 30


def _attrs_to_json(attrs):
    if attrs is None:
        return None
    return {k: _plain(v) for k, v in dataclasses.asdict(attrs).items()}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _attrs_from_json(op_name: str, data):
    attrs_type = get_op(op_name).attrs_type
    if data is None or attrs_type is None:
        return None
    fields = {f.name: f for f in dataclasses.fields(attrs_type)}
    return attrs_type(**{k: _tuplify(v) for k, v in data.items() if k in fields})


def _tuplify(value):
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def save_graph(graph: Graph, path: Path, preprocess=None) -> None:
    """Write ``graph`` (and how images become its input, a Preprocess, when given) as a .ek file."""
    arrays = {}
    tensors = []
    for t in graph.tensors.values():
        entry = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
        if t.quant is not None:
            entry["quant"] = {"scale": t.quant.scale.tolist(), "zero_point": t.quant.zero_point.tolist(),
                              "axis": t.quant.axis}
        if t.is_constant:
            entry["data"] = f"const{len(arrays)}.npy"
            arrays[entry["data"]] = t.data
        tensors.append(entry)
    doc = {
        "format": FORMAT, "name": graph.name, "inputs": graph.inputs, "outputs": graph.outputs,
        "tensors": tensors,
        "nodes": [{"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs,
                   "attrs": _attrs_to_json(n.attrs)} for n in graph.nodes],
        "preprocess": dataclasses.asdict(preprocess) if preprocess is not None else None,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("graph.json", json.dumps(doc, indent=1))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            zf.writestr(name, buffer.getvalue())


def load_graph(path: Path) -> Graph:
    return read_graph_file(path)[0]


def read_graph_file(path: Path) -> tuple[Graph, dict | None]:
    """The graph in a .ek file and the preprocessing saved with it (None when there is none).

    Member sizes are checked before they are decompressed, arrays through read_npy, and anything
    inconsistent is one ModelFileError; the caller checks the graph itself (model_checks)."""
    from edgekit.frontend.model_checks import corrupt_file_errors

    with corrupt_file_errors(path), zipfile.ZipFile(path) as zf:
        doc = json.loads(_member(zf, "graph.json", path))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not an edgekit graph (format {_format_of(doc)!r}); re-create it with "
                                 "edgekit quantize")
        graph = Graph(name=str(doc["name"]), inputs=[str(i) for i in doc["inputs"]],
                      outputs=[str(o) for o in doc["outputs"]])
        for entry in doc["tensors"]:
            quant = entry.get("quant")
            data = None
            if "data" in entry:
                data = read_npy(_member(zf, entry["data"], path), f"{path}:{entry['data']}")
            graph.add_tensor(Tensor(str(entry["name"]), tuple(entry["shape"]), entry["dtype"], data,
                                    QuantParams(**quant) if quant else None))
        for n in doc["nodes"]:
            graph.nodes.append(Node(str(n["name"]), str(n["op"]), [str(i) for i in n["inputs"]],
                                    [str(o) for o in n["outputs"]], _attrs_from_json(n["op"], n["attrs"])))
        return graph, doc.get("preprocess")


def _member(zf: zipfile.ZipFile, name: str, path) -> bytes:
    info = zf.getinfo(name)
    if info.flag_bits & 0x1:  # zipfile would raise RuntimeError asking for a password
        raise ModelFileError(f"{path}: member {name} is encrypted; edgekit writes .ek files unencrypted, save it again")
    if info.file_size > MAX_MEMBER_BYTES:
        raise ModelFileError(f"{path}: member {name} would decompress to {info.file_size:,} B, over the "
                             f"{MAX_MEMBER_BYTES:,} B a model may have")
    return zf.read(info)


def _format_of(doc):
    return doc.get("format") if isinstance(doc, dict) else type(doc).__name__
