"""A seeded, time-bounded fuzzer for edgekit's importers: .tflite, .onnx, .pt, .ek and .npy.

Each format starts from real files (the models in ../shared/models, files derived from them, and an
int8 model with the newer TFLite ops that TensorFlow converts here; .npy includes an .npz input set), and
each input is one of them with a few seeded mutations: bit flips, bytes set to boundary values,
truncation, deletion, duplication; plus structure-aware ones where random bytes rarely reach the
structure (the .ek graph's JSON, the .npy header, the ONNX protobuf's attributes and dimensions).
Each input goes through what a user's file goes through: load_model (importer, checks, float passes)
and the reference interpreter on one input for small models; for .npy, load_inputs for a model.

An input passes when it loads or ends in an EdgekitError with a one-line message. Anything else is
a finding: another exception (a traceback the user would see), a hang (over ``--per-input-s``), or
a signal that kills the process (the parent, `run_format`, sees it and reports the input).

    python tests/fuzz_importers.py --format tflite --count 10000 --seed 1   # make fuzz runs all formats

Findings are written to ``--crashes DIR`` (input file + traceback) to become regression tests.
"""

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("tflite", "onnx", "pt", "ek", "npy")
SMALL_TFLITE = ("tflite-micro/hello_world_int8.tflite", "mlperf-tiny/ad01_int8.tflite",
                "mlperf-tiny/dscnn_kws_int8.tflite", "mlperf-tiny/resnet8_cifar10_int8.tflite",
                "mlperf-tiny/resnet8_cifar10_float.tflite")
INTERPRET_MAX_MACS = 3_000_000  # run the interpreter only on inputs this small (keeps the fuzzer fast)
BOUNDARY_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE)


class Hang(BaseException):
    """Raised by SIGALRM when one input runs over its time limit."""


def shared_models() -> Path:
    for candidate in (ROOT / "shared", ROOT.parent / "shared"):
        if (candidate / "models").is_dir():
            return candidate / "models"
    raise SystemExit("shared/models not found beside the checkout")


# -- seeds: real files, and files derived from them --------------------------------------------------

def cached_seeds(fmt: str, folder: Path, work: Path) -> list[bytes]:
    """``seeds``, built by the first child of a run into ``folder`` and read back by the next ones
    (a child restarts after each input that kills it; exporting and converting takes seconds)."""
    if folder.is_dir():
        return [path.read_bytes() for path in sorted(folder.iterdir())]
    built = seeds(fmt, work)
    staging = folder.with_name(folder.name + ".partial")
    staging.mkdir(parents=True)
    for index, data in enumerate(built):
        (staging / f"{index:02d}").write_bytes(data)
    staging.rename(folder)
    return built


def seeds(fmt: str, work: Path) -> list[bytes]:
    """The unmutated inputs of a format (built into ``work``)."""
    models = shared_models()
    if fmt == "tflite":
        return [(models / name).read_bytes() for name in SMALL_TFLITE] + [_new_ops_tflite(work)]
    if fmt == "ek":
        return [_saved_ek(models / name, work) for name in SMALL_TFLITE[:3]]
    if fmt == "onnx":
        return [_mobilenetv2_onnx(models, work), _small_onnx(work)]
    if fmt == "pt":
        return _pt_seeds(models, work)
    if fmt == "npy":
        return _npy_seeds()
    raise ValueError(fmt)


def _new_ops_tflite(work: Path) -> bytes:
    """An int8 model with the TFLite ops beyond the classic CNN set (split, mul, logistic, mean, leaky
    ReLU, squared difference, maximum/minimum, tanh, concatenation, resize, strided slice, padv2, hard
    swish), converted by TensorFlow as in tests/test_tflite_ops.py."""
    from tflite_models import convert, tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(3)
    weights = tf.constant(rng.normal(0, 0.5, (1, 1, 3, 8)).astype(np.float32))

    def network(x):
        y = tf.nn.conv2d(x, weights, 1, "SAME") - 0.2
        a, b = tf.split(y, 2, axis=3)
        gated = tf.nn.leaky_relu(a, 0.15) * tf.sigmoid(tf.reduce_mean(b, axis=[1, 2], keepdims=True))
        mixed = tf.maximum(tf.tanh(b), tf.minimum(a, b)) - tf.math.squared_difference(a, b)
        z = tf.image.resize(tf.concat([gated, mixed], axis=3), (12, 12), "bilinear")[:, 1:11:2, ::-1, :]
        z = tf.pad(z, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=0.5)
        z = z * tf.nn.relu6(z + 3.0) * (1.0 / 6.0)
        return tf.image.resize(z, (10, 10), "nearest")

    calibration = rng.uniform(0, 1, (8, 8, 8, 3)).astype(np.float32)
    return convert(network, work / "new_ops_int8.tflite", calibration, int8_io=True).read_bytes()


def _saved_ek(tflite_path: Path, work: Path) -> bytes:
    from edgekit.ir.serialize import save_graph
    from edgekit.model_source import load_model

    path = work / (tflite_path.stem + ".ek")
    save_graph(load_model(str(tflite_path)).graph, path)
    return path.read_bytes()


def _mobilenetv2_onnx(models: Path, work: Path) -> bytes:
    """The shared torchvision MobileNetV2 weights at 32 px, exported to ONNX as torch exports it."""
    import torch

    from edgekit.zoo.mobilenetv2 import MobileNetV2

    module = MobileNetV2().eval()
    module.load_state_dict(torch.load(models / "torchvision" / "mobilenet_v2-b0353104.pth", weights_only=True))
    return _export_onnx(module, 32, work / "mbv2.onnx")


def _small_module():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU6(),
                         nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1)).eval()


def _small_onnx(work: Path) -> bytes:
    return _export_onnx(_small_module(), 8, work / "small.onnx")


def _export_onnx(module, size: int, path: Path) -> bytes:
    import torch

    from edgekit.frontend.torch import _quiet_exporter

    with _quiet_exporter():
        torch.onnx.export(module, (torch.zeros(1, 3, size, size),), str(path), dynamo=True, optimize=True)
    return path.read_bytes()


def _pt_seeds(models: Path, work: Path) -> list[bytes]:
    """A TorchScript module, a zoo state_dict, and the shared weights' first tensors as a non-zoo dict."""
    import torch

    from edgekit.zoo.mobilenetv2 import MobileNetV2

    scripted = work / "small_script.pt"
    torch.jit.save(torch.jit.script(_small_module()), scripted)
    zoo = work / "zoo_state.pth"
    torch.save(MobileNetV2(num_classes=4, width=0.35).state_dict(), zoo)
    shared = torch.load(models / "torchvision" / "mobilenet_v2-b0353104.pth", weights_only=True)
    partial = work / "partial.pth"
    torch.save({k: shared[k] for k in list(shared)[:6]}, partial)
    return [scripted.read_bytes(), zoo.read_bytes(), partial.read_bytes()]


def _npy_seeds() -> list[bytes]:
    """Inputs for the two models of _npy_models: 1x1 int8, and 32x32x3 float (NHWC, and NCHW stacked)."""
    rng = np.random.default_rng(0)
    arrays = [np.zeros((1, 1), np.int8), np.full((3, 1, 1), 0.5, np.float32), np.ones((2, 1), np.float64),
              rng.standard_normal((1, 32, 32, 3)).astype(np.float32), rng.uniform(0, 1, (2, 3, 32, 32))]
    out = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array)
        out.append(buffer.getvalue())
    pair = io.BytesIO()  # an input set of the two-input model (.npz, keyed input_0, input_1)
    np.savez(pair, input_0=np.zeros((1, 1), np.int8), input_1=rng.standard_normal((1, 4)).astype(np.float32))
    return out + [pair.getvalue()]


# -- mutations ---------------------------------------------------------------------------------------

def mutate(data: bytes, fmt: str, rng: random.Random) -> bytes:
    """One seeded mutant of ``data``: structure-aware for some formats half of the time, else bytes."""
    if fmt == "ek" and rng.random() < 0.6:
        return _mutate_ek(data, rng)
    if fmt == "npy" and rng.random() < 0.5:
        return _mutate_npy_header(data, rng)
    if fmt == "onnx" and rng.random() < 0.5:
        return _mutate_onnx(data, rng)
    return mutate_bytes(data, rng)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buffer:
            break
        kind = rng.random()
        # favour the first kilobytes, where the headers, tables and offsets are
        at = rng.randrange(min(len(buffer), 4096)) if rng.random() < 0.7 else rng.randrange(len(buffer))
        if kind < 0.35:
            buffer[at] ^= 1 << rng.randrange(8)
        elif kind < 0.6:
            buffer[at] = rng.choice(BOUNDARY_BYTES)
        elif kind < 0.7:
            del buffer[rng.randrange(len(buffer)):]
        elif kind < 0.8:
            del buffer[at:at + rng.randint(1, 64)]
        elif kind < 0.9:
            chunk = buffer[at:at + rng.randint(1, 64)]
            buffer[at:at] = chunk
        else:
            buffer[at:at + 4] = rng.randbytes(4)
    return bytes(buffer)


def _mutate_value(value, rng: random.Random):
    choices = [0, -1, 1, 2 ** 31, -(2 ** 63), 1e300, float("nan"), "", "x", None, [], [0], {}, True, 3.5]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.5:
        return type(value)(value * rng.choice((-1, 0, 2, 1000))) if value == value else 0
    return rng.choice(choices)


def _mutate_json(doc, rng: random.Random, depth: int = 0):
    """Change one value somewhere in a JSON document (or drop a key / list item)."""
    if isinstance(doc, (dict, list)) and doc:
        key = rng.choice(list(doc) if isinstance(doc, dict) else range(len(doc)))
        if rng.random() < 0.1:
            del doc[key]
        elif depth < 6 and isinstance(doc[key], (dict, list)) and rng.random() < 0.8:
            _mutate_json(doc[key], rng, depth + 1)
        else:
            doc[key] = _mutate_value(doc[key], rng)
    return doc


def _mutate_ek(data: bytes, rng: random.Random) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if rng.random() < 0.8:
        doc = json.loads(members["graph.json"])
        for _ in range(rng.randint(1, 3)):
            _mutate_json(doc, rng)
        members["graph.json"] = json.dumps(doc).encode()
    else:
        name = rng.choice([n for n in members if n.endswith(".npy")] or ["graph.json"])
        members[name] = _mutate_npy_header(members[name], rng) if name.endswith(".npy") else members[name]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def _mutate_npy_header(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the .npy header's dict (shape, dtype, order) or its length field, keeping the payload."""
    if len(data) < 10 or not data.startswith(b"\x93NUMPY"):
        return mutate_bytes(data, rng)
    header_len = int.from_bytes(data[8:10], "little")
    payload = data[10 + header_len:]
    shapes = ["()", "(0,)", "(1, 1)", "(1000000000, 1000000000)", "(-1,)", "(3, 1, 1)", "(1, 2, 2, 3)",
              "(2, 1)", "(1, 1, 1, 1, 1)", "'x'"]
    dtypes = ["'|i1'", "'<f4'", "'<f8'", "'|O'", "'<U3'", "'<c8'", "'|b1'", "'<i8'", "'>f4'", "'V4'", "'bogus'"]
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (
        rng.choice(dtypes), rng.choice(["False", "True", "3"]), rng.choice(shapes))
    body = header.encode("latin1")
    body += b" " * ((64 - (10 + len(body) + 1) % 64) % 64) + b"\n"
    length = len(body) if rng.random() < 0.9 else rng.randrange(0, 65536)
    out = data[:8] + length.to_bytes(2, "little") + body + payload
    return out if rng.random() < 0.7 else mutate_bytes(out, rng)


def _mutate_onnx(data: bytes, rng: random.Random) -> bytes:
    """Change an attribute's ints, a value's dimension or an initializer's dims in the protobuf."""
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception:
        return mutate_bytes(data, rng)
    graph = model.graph
    choice = rng.random()
    nodes_with_ints = [(n, a) for n in graph.node for a in n.attribute if a.ints or a.type == onnx.AttributeProto.INT]
    if choice < 0.5 and nodes_with_ints:
        _, attribute = rng.choice(nodes_with_ints)
        if attribute.ints:
            attribute.ints[rng.randrange(len(attribute.ints))] = rng.choice((0, -1, 2, 7, 2 ** 31, -(2 ** 40)))
        else:
            attribute.i = rng.choice((0, -1, 2, 7, 2 ** 31))
    elif choice < 0.75 and graph.initializer:
        tensor = rng.choice(list(graph.initializer))
        if tensor.dims:
            tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice((0, 1, 3, 10 ** 9))
    else:
        values = list(graph.input) + list(graph.output) + list(graph.value_info)
        dims = [d for v in values for d in v.type.tensor_type.shape.dim]
        if dims:
            rng.choice(dims).dim_value = rng.choice((0, 1, 2, 10 ** 6))
    return model.SerializeToString()


# -- running one input -------------------------------------------------------------------------------

def _npy_models():
    """Models whose inputs .npy files are fed to: an int8 one and a float image model."""
    from edgekit.model_source import LoadedModel, load_model

    from edgekit.ir import Graph, QuantParams, Tensor

    hello = load_model(str(shared_models() / SMALL_TFLITE[0]))
    resnet = load_model(str(shared_models() / SMALL_TFLITE[4]))
    pair = Graph("pair")  # only its inputs matter to load_input_set
    pair.add_tensor(Tensor("a", (1, 1), "int8", quant=QuantParams.per_tensor(0.1, 0)))
    pair.add_tensor(Tensor("b", (1, 4), "float32"))
    pair.inputs = ["a", "b"]
    return [hello, LoadedModel(resnet.name, resnet.graph, resnet.preprocess), LoadedModel("pair", pair, None)]


def run_input(fmt: str, path: Path, npy_models) -> None:
    """What edgekit does with a user's file of this format; raises what edgekit raises."""
    from edgekit.errors import EdgekitError
    from edgekit.inspect_model import summarize
    from edgekit.ir.interpreter import run_graph
    from edgekit.model_source import load_model
    from edgekit.samples import load_inputs

    if fmt == "npy" and path.read_bytes()[:4] == b"PK\x03\x04":  # an .npz input set
        from edgekit.samples import load_input_set

        npz = path.rename(path.with_suffix(".npz"))
        try:
            load_input_set(npz, npy_models[-1])
            load_input_set(npz, npy_models[-1], for_float=True)
        finally:
            npz.rename(path)
        return
    if fmt == "npy":  # loaded when some model takes it; an EdgekitError from each is a clean refusal
        refusal = None
        for model in npy_models[:-1]:
            try:
                load_inputs(str(path), model)
                load_inputs(str(path), model, for_float=True)
                return
            except EdgekitError as error:
                refusal = error
        raise refusal
    if fmt == "pt":  # the loader; what loads then goes through torch's own exporter, seconds per input
        from edgekit.frontend.torch import load_torch_file

        load_torch_file(path, resolution=16)
        return
    model = load_model(str(path), resolution=16)
    summary = summarize(model.graph)
    if summary.total_macs <= INTERPRET_MAX_MACS:
        graph = model.graph
        tensor = graph.tensors[graph.inputs[0]]
        x = np.zeros(tensor.shape, np.int8 if tensor.dtype == "int8" else np.float32)
        run_graph(graph, [x], mode="int8" if model.is_quantized else "float")


def fuzz(fmt: str, count: int, seed: int, per_input_s: float, crashes: Path, progress_file: Path | None,
         start: int = 0, seed_dir: Path | None = None) -> dict:
    """Run inputs ``start``..``count``-1 of the seeded sequence; returns counts and findings."""
    from edgekit.errors import EdgekitError

    work = Path(tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    originals = cached_seeds(fmt, seed_dir, work) if seed_dir else seeds(fmt, work)
    npy_models = _npy_models() if fmt == "npy" else None
    signal.signal(signal.SIGALRM, _raise_hang)
    counts = {"format": fmt, "inputs": 0, "loaded": 0, "edgekit_errors": 0, "findings": []}
    started = time.monotonic()
    for index in range(start, count):
        rng = random.Random(f"{seed}:{fmt}:{index}")
        data = mutate(rng.choice(originals), fmt, rng)
        path = work / f"input{index}.{fmt}"
        path.write_bytes(data)
        if progress_file is not None:
            progress_file.write_text(str(index))
        signal.setitimer(signal.ITIMER_REAL, per_input_s)
        try:
            run_input(fmt, path, npy_models)
            counts["loaded"] += 1
        except EdgekitError as error:
            counts["edgekit_errors"] += 1
            if "\n" in str(error) or not str(error).strip():
                counts["findings"].append(_record(crashes, fmt, index, data, f"multi-line or empty message: {error!r}"))
        except Hang:
            counts["findings"].append(_record(crashes, fmt, index, data, f"hang: over {per_input_s} s"))
        except Exception:  # noqa: BLE001 - any other exception is what the fuzzer looks for
            counts["findings"].append(_record(crashes, fmt, index, data, traceback.format_exc()))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        counts["inputs"] += 1
        path.unlink(missing_ok=True)
        path.with_suffix(".npz").unlink(missing_ok=True)
    counts["seconds"] = round(time.monotonic() - started, 1)
    shutil.rmtree(work, ignore_errors=True)
    return counts


def _raise_hang(signum, frame):
    raise Hang()


def _record(crashes: Path, fmt: str, index: int, data: bytes, what: str) -> dict:
    crashes.mkdir(parents=True, exist_ok=True)
    path = crashes / f"{fmt}-{index}.{fmt}"
    path.write_bytes(data)
    path.with_suffix(path.suffix + ".txt").write_text(what)
    return {"index": index, "input": str(path), "what": what.strip().splitlines()[-1][:300]}


def run_format(fmt: str, count: int, seed: int, per_input_s: float, crashes: Path, timeout_s: float) -> dict:
    """Fuzz in a child process, so that a signal (a crash in C code) is seen and reported, and the run
    resumes after the input that killed it."""
    summary = {"format": fmt, "inputs": 0, "loaded": 0, "edgekit_errors": 0, "findings": [], "seconds": 0.0}
    start = 0
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory(prefix="edgekit-fuzz-progress-") as folder:
        progress = Path(folder) / "index"
        while start < count:
            command = [sys.executable, __file__, "--child", "--format", fmt, "--count", str(count), "--seed",
                       str(seed), "--per-input-s", str(per_input_s), "--crashes", str(crashes), "--start",
                       str(start), "--progress", str(progress), "--seed-dir", str(Path(folder) / "seeds")]
            try:
                result = subprocess.run(command, capture_output=True, text=True,
                                        timeout=max(1.0, deadline - time.monotonic()),
                                        env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep +
                                             os.environ.get("PYTHONPATH", "")})
            except subprocess.TimeoutExpired:
                summary["findings"].append({"index": _read_index(progress), "what": f"run over {timeout_s} s"})
                return summary
            if result.returncode == 0:
                part = json.loads(result.stdout.strip().splitlines()[-1])
                for key in ("inputs", "loaded", "edgekit_errors", "seconds"):
                    summary[key] += part[key]
                summary["findings"] += part["findings"]
                return summary
            index = _read_index(progress)
            summary["findings"].append({"index": index, "what": f"child died with exit code {result.returncode}: "
                                                                 f"{result.stderr.strip()[-300:]}"})
            if index < start:  # it died before its first input: setting up failed, and would again
                return summary
            summary["inputs"] += index - start + 1
            start = index + 1
    return summary


def _read_index(progress: Path) -> int:
    try:
        return int(progress.read_text())
    except (OSError, ValueError):
        return -1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=FORMATS + ("all",), default="all")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-input-s", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="for each format")
    parser.add_argument("--crashes", type=Path, default=Path("build/fuzz-findings"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(fuzz(args.format, args.count, args.seed, args.per_input_s, args.crashes, args.progress,
                              args.start, args.seed_dir)))
        return 0
    total_findings = 0
    for fmt in FORMATS if args.format == "all" else (args.format,):
        summary = run_format(fmt, args.count, args.seed, args.per_input_s, args.crashes, args.timeout_s)
        total_findings += len(summary["findings"])
        print(f"{fmt}: {summary['inputs']:,} inputs in {summary['seconds']} s: {summary['loaded']:,} loaded, "
              f"{summary['edgekit_errors']:,} EdgekitErrors, {len(summary['findings'])} findings", flush=True)
        for finding in summary["findings"][:20]:
            print(f"  input {finding['index']}: {finding['what']}", flush=True)
    return 1 if total_findings else 0


if __name__ == "__main__":
    sys.exit(main())
