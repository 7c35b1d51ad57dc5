"""Save and load a Graph as one ``.ek`` file (a zip: graph.json plus the constants as .npy).

The format is plain data so later steps (`edgekit compile`, `run`, `report`) can start from a saved
graph without the framework it came from.
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
from edgekit.ops import get_op

FORMAT = "edgekit-graph/1"


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


def save_graph(graph: Graph, path: Path) -> None:
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
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("graph.json", json.dumps(doc, indent=1))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            zf.writestr(name, buffer.getvalue())


def load_graph(path: Path) -> Graph:
    try:
        with zipfile.ZipFile(path) as zf:
            doc = json.loads(zf.read("graph.json"))
            if doc.get("format") != FORMAT:
                raise ModelFileError(f"{path}: not an edgekit graph (format {doc.get('format')!r})")
            graph = Graph(name=doc["name"], inputs=doc["inputs"], outputs=doc["outputs"])
            for entry in doc["tensors"]:
                quant = entry.get("quant")
                data = None
                if "data" in entry:
                    data = np.load(io.BytesIO(zf.read(entry["data"])), allow_pickle=False)
                graph.add_tensor(Tensor(entry["name"], tuple(entry["shape"]), entry["dtype"], data,
                                        QuantParams(**quant) if quant else None))
            for n in doc["nodes"]:
                graph.nodes.append(Node(n["name"], n["op"], n["inputs"], n["outputs"],
                                        _attrs_from_json(n["op"], n["attrs"])))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupt edgekit graph file ({exc}); re-create it with edgekit quantize")
    return graph
