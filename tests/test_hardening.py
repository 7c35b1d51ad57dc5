"""Hardening: what an attacker's or a careless user's input does to edgekit, run as the CLI runs.

Each case must end in one `edgekit: error:` line with the right exit code (no traceback), run no code
from the input, and leave the user's files and build folders as they were.
"""

import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import pytest

from test_cli import VWW, assert_user_error, edgekit

PAYLOAD_MARK = "pwned"


class _WritesAFile:
    """A pickle payload: unpickling it calls eval, which writes a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return eval, (f"open({self.path!r}, 'w').write({PAYLOAD_MARK!r})",)


@pytest.fixture
def evil_files(tmp_path):
    """The payload as torch.save writes it (a zip) and as a bare pickle, and the file it would write."""
    import torch

    witness = tmp_path / "witness.txt"
    zipped, bare = tmp_path / "evil.pt", tmp_path / "evil_bare.pth"
    torch.save({"weight": _WritesAFile(witness)}, zipped)
    bare.write_bytes(pickle.dumps(_WritesAFile(witness)))
    return witness, (zipped, bare)


def test_the_payload_is_live(evil_files):
    """The test would catch a loader that runs it: plain pickle.loads does write the file."""
    witness, (_, bare) = evil_files
    pickle.loads(bare.read_bytes())
    assert witness.read_text() == PAYLOAD_MARK


@pytest.mark.parametrize("which", [0, 1])
def test_malicious_pickle_does_not_run(evil_files, which, tmp_path):
    witness, paths = evil_files
    path = paths[which]
    error = assert_user_error(edgekit("inspect", path), path.name, "Python objects", "torch.jit.save")
    assert "refuses" in error
    assert_user_error(edgekit("infer", path, "--input", tmp_path / "x.npy"), path.name)
    assert_user_error(edgekit("compile", path, "--target", "cortex-m4", "-o", tmp_path / "b"), path.name)
    assert not witness.exists()
    assert not (tmp_path / "b").exists()


# -- targets are names, not paths ----------------------------------------------------------------------

HELLO = "tflite-micro/hello_world_int8.tflite"
#: has TVM-generated kernels (softmax, average pool) on every target, so its compile writes the kernel cache
DSCNN = "mlperf-tiny/dscnn_kws_int8.tflite"


def _own_target(tmp_path, name: str):
    from edgekit.paths import TARGETS_DIR

    text = (TARGETS_DIR / "boards" / "nrf52840-dk.toml").read_text().replace('name = "nrf52840-dk"',
                                                                             f'name = "{name}"', 1)
    assert f'name = "{name}"' in text
    path = tmp_path / "own.toml"
    path.write_text(text)
    return path


def test_target_name_that_is_a_path_is_unknown(models_dir, tmp_path):
    """A `.toml` outside targets/ whose name is a `../` path is not loaded, and nothing is written."""
    outside = tmp_path / "evil"
    outside.mkdir()
    relative = _own_target(outside, "x").with_suffix("")
    result = edgekit("compile", models_dir / HELLO, "--target", f"../../../../../../../..{relative}", cwd=tmp_path)
    assert_user_error(result, "unknown target", "--target-file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil"]


def test_target_file_whose_name_is_a_path_is_refused(models_dir, tmp_path):
    result = edgekit("compile", models_dir / HELLO, "--target-file", _own_target(tmp_path, "../../escape"),
                     cwd=tmp_path)
    assert_user_error(result, "own.toml", "not a plain name")
    assert not (tmp_path / "build").exists()


def test_target_file_that_is_not_toml(models_dir, tmp_path):
    path = tmp_path / "junk.toml"
    path.write_bytes(b"\x00\xff[[[")
    assert_user_error(edgekit("compile", models_dir / HELLO, "--target-file", path, cwd=tmp_path), "junk.toml",
                      "not valid TOML")


@pytest.mark.slow
@pytest.mark.usefixtures("private_edgekit_home")
def test_own_target_file_compiles_and_runs(models_dir, tmp_path):
    """A user's own target (a copy of cortex-m4 under another name) builds into build/MODEL-NAME and runs
    there without the file, bit-exact."""
    own = _own_target(tmp_path, "my-m4")
    result = edgekit("compile", models_dir / HELLO, "--target-file", own, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    build = tmp_path / "build" / "hello_world_int8-my-m4"
    assert build.is_dir()
    own.unlink()
    result = edgekit("run", build, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"bit_exact": true' in result.stdout


# -- build folders: --force, lock, signals, read-only places -------------------------------------------

def _tree(folder):
    """Every path under ``folder`` with its bytes (files) or None (folders): to prove nothing changed."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def hello(models_dir):
    return models_dir / HELLO


def _compile_hello(hello, *args, cwd):
    return edgekit("compile", hello, "--target", "cortex-m4", *args, cwd=cwd)


def test_force_refuses_a_folder_with_only_a_manifest_file(hello, tmp_path):
    """A folder holding `edgekit.json` = {} and the user's main.c is not a build: --force leaves it alone."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "edgekit.json").write_text("{}")
    (folder / "main.c").write_text("int main(void) { return 0; }\n")
    before = _tree(tmp_path)
    assert_user_error(_compile_hello(hello, "-o", folder, "--force", cwd=tmp_path), "not an edgekit build folder")
    assert _tree(tmp_path) == before


@pytest.mark.slow
@pytest.mark.usefixtures("private_edgekit_home")
def test_force_replaces_a_build_but_not_a_user_file_inside_it(hello, tmp_path):
    build = tmp_path / "b"
    assert _compile_hello(hello, "-o", build, cwd=tmp_path).returncode == 0
    first_id = json.loads((build / "edgekit.json").read_text())["build_id"]
    result = _compile_hello(hello, "-o", build, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((build / "edgekit.json").read_text())["build_id"] != first_id

    (build / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    assert_user_error(_compile_hello(hello, "-o", build, "--force", cwd=tmp_path), "notes.txt", "did not write")
    assert _tree(tmp_path) == before
    # a forged marker (another build's id) does not make a folder replaceable either
    (build / "notes.txt").unlink()
    marker = json.loads((build / ".edgekit-build").read_text())
    (build / ".edgekit-build").write_text(json.dumps(dict(marker, build_id="0" * 32)))
    assert_user_error(_compile_hello(hello, "-o", build, "--force", cwd=tmp_path), "not an edgekit build folder")


def test_a_second_compile_into_a_locked_folder_is_refused(hello, tmp_path):
    """While a compile holds the folder's lock (taken here as that compile takes it), another one exits 2."""
    import fcntl

    lock = tmp_path / ".b.edgekit-lock"
    with open(lock, "w") as handle:
        handle.write("pid 4242")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_EX)
        before = _tree(tmp_path)
        assert_user_error(_compile_hello(hello, "-o", tmp_path / "b", cwd=tmp_path), "another edgekit compile", "pid 4242")
        assert _tree(tmp_path) == before


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_compile_removes_what_a_killed_one_left(hello, tmp_path):
    """SIGKILL cannot be caught: the staging folder beside the build and the scratch folder in $TMPDIR stay,
    and the next compile into that folder removes them (here it then fails on a bad --patch)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    stale_staging = tmp_path / ".b.edgekit-staging-abc123"
    stale_scratch = scratch / f"edgekit-{_dead_pid()}-export-xyz"
    live_scratch = scratch / f"edgekit-{os.getpid()}-export-xyz"
    other_build_staging = tmp_path / ".b2.edgekit-staging-abc123"
    for folder in (stale_staging, stale_scratch, live_scratch, other_build_staging):
        folder.mkdir()
        (folder / "big.bin").write_bytes(b"x" * 1000)
    result = edgekit("compile", hello, "--target", "cortex-m4", "-o", tmp_path / "b", "--patch",
                     "bogus", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert_user_error(result, "--patch 'bogus'")
    assert not stale_staging.exists() and not stale_scratch.exists()
    assert live_scratch.exists() and other_build_staging.exists()
    assert not (tmp_path / "b").exists() and not (tmp_path / ".b.edgekit-lock").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("private_edgekit_home")
def test_sigterm_during_a_compile_removes_its_temporary_files(models_dir, tmp_path):
    """SIGTERM once the staging folder exists: exit 143, and no staging folder, lock, build or $TMPDIR folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "edgekit.cli", "compile", str(models_dir / VWW), "--target", "cortex-m7", "-o", "b"],
        cwd=work, env=dict(os.environ, TMPDIR=str(scratch)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 240
    while not list(work.glob(".b.edgekit-staging-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the work on the staging folder
    assert process.poll() is None, "the compile ended before its staging folder was seen"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated" in stderr
    assert list(work.iterdir()) == []
    assert list(scratch.iterdir()) == []


def _as_unprivileged(command: list[str]) -> list[str]:
    """Root writes to read-only folders anyway: run the command as `nobody` to see what a user sees."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


@pytest.fixture
def open_tmp_path():
    """A temporary folder that `nobody` can enter (pytest's own sit in a private folder of root's)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="edgekit-test-")
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_output_in_a_read_only_folder_fails_before_any_work(models_dir, open_tmp_path):
    tmp_path = open_tmp_path
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    result = subprocess.run(
        _as_unprivileged([sys.executable, "-m", "edgekit.cli", "compile", str(models_dir / VWW), "--target",
                          "cortex-m7", "-o", str(readonly / "sub" / "b")]),
        capture_output=True, text=True, timeout=120, env=dict(os.environ, EDGEKIT_HOME=str(tmp_path / "home")))
    error = assert_user_error(result, "ro", "not a writable folder")
    assert "choose another" in error
    assert list(readonly.iterdir()) == []


@pytest.mark.slow
def test_read_only_edgekit_home_falls_back_to_a_private_cache(models_dir, open_tmp_path):
    """A read-only $EDGEKIT_HOME: the compile still works (kernels cached in a private $TMPDIR folder)."""
    tmp_path = open_tmp_path
    home, scratch, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "out"
    for folder in (home, scratch, out):
        folder.mkdir()
    home.chmod(0o555)
    scratch.chmod(0o777)
    out.chmod(0o777)
    result = subprocess.run(
        _as_unprivileged([sys.executable, "-m", "edgekit.cli", "compile", str(models_dir / DSCNN), "--target",
                          "cortex-m4", "-o", str(out / "b")]),
        capture_output=True, text=True, timeout=600, env=dict(os.environ, EDGEKIT_HOME=str(home), TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert list(home.iterdir()) == []
    assert (out / "b" / "firmware.elf").is_file()
    assert [p.name for p in scratch.iterdir()] == [f"edgekit-cache-{65534 if os.geteuid() == 0 else os.geteuid()}"]


# -- bad input at the edge: numbers, .npy files, model files -------------------------------------------

@pytest.mark.parametrize("options, fragments", [
    (["--resolution", "-5"], ["--resolution -5", "from 8 to 4,096"]),
    (["--resolution", "100000"], ["--resolution 100000", "from 8 to 4,096"]),
    (["--num-classes", "0"], ["--num-classes 0", "from 1 to 100,000"]),
    (["--width", "0"], ["--width 0", "from 0.05 to 4.0"]),
    (["--width", "-1"], ["--width -1", "from 0.05 to 4.0"]),
    (["--width", "100"], ["--width 100", "from 0.05 to 4.0"]),
    (["--width", "nan"], ["--width nan"]),
    (["--width", "abc"], ["--width", "invalid float value"]),
])
def test_zoo_numbers_out_of_range_are_refused_before_any_allocation(options, fragments):
    started = time.monotonic()
    assert_user_error(edgekit("inspect", "mobilenetv2", *options), *fragments)
    assert time.monotonic() - started < 60  # refused up front, not after building a network


def test_memory_estimate_refuses_what_this_machine_cannot_build(monkeypatch):
    """Within the ranges, a model that needs more than half the free memory is refused before it is built,
    with the largest resolution that fits."""
    from edgekit.errors import EdgekitError
    from edgekit.zoo import ZOO, registry
    from edgekit.zoo.mobilenetv2 import float_bytes

    budget = 2 * registry.MEMORY_FACTOR * float_bytes(1.0, 512, 1000)  # room for 512 px, not for 1024
    monkeypatch.setattr(registry, "available_memory_bytes", lambda: budget)
    registry.check_options(ZOO["mobilenetv2"], 1.0, 512, 1000)
    with pytest.raises(EdgekitError, match=r"--resolution 1024: building it needs about .* GiB.*use --resolution "
                                           r"(\d+) or less") as info:
        registry.check_options(ZOO["mobilenetv2"], 1.0, 1024, 1000)
    largest = int(info.value.args[0].rsplit("--resolution ", 1)[1].split()[0])
    assert 512 <= largest < 1024
    assert _fits(budget, largest) and not _fits(budget, largest + 8)


def _fits(budget, resolution):
    """The rule the estimate applies, restated for the test."""
    from edgekit.zoo import registry
    from edgekit.zoo.mobilenetv2 import float_bytes

    return registry.MEMORY_FACTOR * float_bytes(1.0, resolution, 1000) <= budget // 2


def test_float_bytes_matches_the_built_network():
    """The memory estimate's parameter count is the real network's, at two widths."""
    import torch

    from edgekit.zoo.mobilenetv2 import MobileNetV2, float_bytes

    for width, classes in ((1.0, 1000), (0.35, 10)):
        module = MobileNetV2(num_classes=classes, width=width)
        params = sum(p.numel() for p in module.parameters())
        activations = float_bytes(width, 32, classes) // 4 - params
        out = [0]

        def count(mod, args, output):
            out[0] += output.numel()

        hooks = [m.register_forward_hook(count) for m in module.modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        with torch.no_grad():
            module.eval()(torch.zeros(1, 3, 32, 32))
        for hook in hooks:
            hook.remove()
        assert activations == out[0], (width, activations, out[0])


def _npy_cases(folder):
    """Broken .npy files as a user might have them; each must be refused in one line."""
    import io

    import numpy as np

    good = io.BytesIO()
    np.save(good, np.zeros((1, 96, 96, 3), np.int8))
    cases = {
        "truncated.npy": good.getvalue()[:200],
        "text.npy": b"1 2 3\n4 5 6\n",
        "empty.npy": b"",
    }
    object_array = io.BytesIO()
    np.save(object_array, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    cases["object.npy"] = object_array.getvalue()
    wrong_shape = io.BytesIO()
    np.save(wrong_shape, np.zeros((5, 7), np.float32))
    cases["wrong_shape.npy"] = wrong_shape.getvalue()
    wrong_dtype = io.BytesIO()
    np.save(wrong_dtype, np.zeros((1, 96, 96, 3), np.complex64))
    cases["complex.npy"] = wrong_dtype.getvalue()
    strings = io.BytesIO()
    np.save(strings, np.array(["a", "b"]))
    cases["strings.npy"] = strings.getvalue()
    nan = io.BytesIO()
    np.save(nan, np.full((1, 96, 96, 3), np.nan, np.float32))
    cases["nan.npy"] = nan.getvalue()
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    return sorted(cases)


@pytest.mark.parametrize("name", ["truncated.npy", "text.npy", "empty.npy", "object.npy", "wrong_shape.npy",
                                  "complex.npy", "strings.npy", "nan.npy"])
def test_broken_npy_input_to_infer(models_dir, tmp_path, name):
    assert name in _npy_cases(tmp_path)
    before = _tree(tmp_path)
    result = edgekit("infer", models_dir / VWW, "--input", tmp_path / name, "--output", tmp_path / "y.npy")
    assert_user_error(result, name)
    assert _tree(tmp_path) == before


def test_broken_npz_input_sets_are_one_error(tmp_path):
    """.npz files (input sets of several-input models, compress --data) are read by npy_file.read_npz:
    truncated, pickled, zip-bombed or non-zip files end in one EdgekitError naming the file."""
    import io
    import zipfile

    import numpy as np

    from edgekit.errors import EdgekitError
    from edgekit.npy_file import read_npz

    good = tmp_path / "good.npz"
    np.savez(good, input_0=np.arange(6, dtype=np.int8).reshape(2, 3), input_1=np.ones(4, np.float32))
    arrays = read_npz(good)
    assert sorted(arrays) == ["input_0", "input_1"] and arrays["input_0"].tolist() == [[0, 1, 2], [3, 4, 5]]
    cases = {"truncated.npz": good.read_bytes()[:-40], "text.npz": b"x,y\n1,2\n", "empty.npz": b""}
    pickled = io.BytesIO()
    np.savez(pickled, input_0=np.array([{"a": 1}], dtype=object))
    cases["pickled.npz"] = pickled.getvalue()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("input_0.npy", b"\0" * (1 << 20))
    cases["bomb.npz"] = bomb.getvalue().replace((1 << 20).to_bytes(4, "little"), (3 << 30).to_bytes(4, "little"))
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(EdgekitError, match=name.replace(".", r"\.")):
            read_npz(tmp_path / name)


def test_zero_byte_and_directory_and_device_models(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "folder.tflite").mkdir()
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    assert_user_error(edgekit("inspect", tmp_path / "empty.onnx"), "empty.onnx")
    assert_user_error(edgekit("inspect", tmp_path / "folder.tflite"), "folder.tflite", "is a folder")
    assert_user_error(edgekit("inspect", tmp_path / "zero.onnx"), "zero.onnx", "not a regular file")


def test_targets_json_into_a_closed_pipe():
    """`edgekit targets --json | head -c 10`: the reader leaves early; no BrokenPipeError traceback."""
    shell = subprocess.run(f"{sys.executable} -m edgekit.cli targets --json | head -c 10", shell=True,
                           capture_output=True, text=True, timeout=120)
    whole = subprocess.run([sys.executable, "-m", "edgekit.cli", "targets", "--json"], capture_output=True, text=True,
                           timeout=120)
    assert len(whole.stdout) > 10 and shell.stdout == whole.stdout[:10]
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr


def _onnx_with_external_weights(path, location: str, offset: str = "0"):
    """A MatMul model at ``path`` whose 4x4 weights are external data at ``location`` and ``offset``."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", "64")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [weight])
    onnx.save(helper.make_model(graph), path, save_as_external_data=False)


def test_onnx_external_data_outside_the_model_folder_is_refused(tmp_path):
    """An initializer whose external data points at ../secret is never read."""
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 64)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _onnx_with_external_weights(model_dir / "m.onnx", "../secret.bin")
    assert_user_error(edgekit("inspect", model_dir / "m.onnx"), "m.onnx", "outside the model's folder")


def test_fuzz_finding_onnx_external_data_offset_not_a_number(tmp_path):
    """An external-data offset that is not a number ("13883x08": ValueError from onnx before the fix;
    make fuzz, 10,000 .onnx inputs, 2 findings)."""
    (tmp_path / "w.bin").write_bytes(b"\x00" * 64)
    _onnx_with_external_weights(tmp_path / "m.onnx", "w.bin", "13883x08")
    before = _tree(tmp_path)
    assert_user_error(edgekit("inspect", tmp_path / "m.onnx"), "m.onnx", "13883x08")
    assert _tree(tmp_path) == before


# -- honest output -------------------------------------------------------------------------------------

def test_random_weights_are_said_and_pretrained_is_a_choice():
    note = edgekit("inspect", "mobilenetv2", "--width", "0.35", "--resolution", "32")
    assert note.returncode == 0, note.stderr
    assert "edgekit: note:" in note.stderr and "random" in note.stderr and "--no-pretrained" in note.stderr
    quiet = edgekit("inspect", "mobilenetv2", "--width", "0.35", "--resolution", "32", "--no-pretrained")
    assert quiet.returncode == 0 and "note" not in quiet.stderr
    assert quiet.stdout == note.stdout
    assert_user_error(edgekit("inspect", "mobilenetv2", "--width", "0.35", "--pretrained"), "no pretrained",
                      "--no-pretrained")


def test_ek_keeps_the_preprocessing(tmp_path):
    """A graph saved with its preprocessing loads with it; an image fed to the .ek is preprocessed as the zoo
    model's (ImageNet mean/std and crop), not as plain [0, 1] pixels."""
    from edgekit.frontend.images import IMAGENET_MEAN, IMAGENET_STD
    from edgekit.ir.serialize import save_graph
    from edgekit.model_source import load_model

    zoo = load_model("mobilenetv2", width=0.35, resolution=32, num_classes=10, pretrained=False)
    path = tmp_path / "m.ek"
    save_graph(zoo.graph, path, zoo.preprocess)
    loaded = load_model(str(path))
    assert loaded.preprocess == zoo.preprocess
    assert loaded.preprocess.mean == IMAGENET_MEAN and loaded.preprocess.std == IMAGENET_STD


def test_hints_name_only_options_that_exist():
    """Every --option a does-not-fit hint suggests is an option of `edgekit compile`."""
    import re

    from edgekit import build
    from edgekit.cli import build_parser

    parser = build_parser()
    compile_parser = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "compile")[1]
    known = {option for action in compile_parser._actions for option in action.option_strings}
    hints = " ".join(suggestion for _, suggestion in build._LINKER_REGIONS.values())
    suggested = set(re.findall(r"--[a-z-]+", hints))
    assert suggested and suggested <= known, suggested - known


# -- regressions: what the fuzzer found (tests/fuzz_importers.py), one case per finding ------------------

@pytest.fixture(scope="module")
def saved_ek(models_dir, tmp_path_factory):
    from edgekit.ir.serialize import save_graph
    from edgekit.model_source import load_model

    path = tmp_path_factory.mktemp("ek") / "hello.ek"
    save_graph(load_model(str(models_dir / HELLO)).graph, path)
    return path


def test_fuzz_finding_corrupt_ek_zip(saved_ek, tmp_path):
    """Bytes flipped inside the deflated members (BadZipFile, zlib.error, OSError before the fix)."""
    data = bytearray(saved_ek.read_bytes())
    for at in range(40, min(len(data), 400), 7):
        data[at] ^= 0xFF
    path = tmp_path / "flipped.ek"
    path.write_bytes(bytes(data))
    assert_user_error(edgekit("inspect", path), "flipped.ek")


def _patched_zip(data: bytes, central_offset: int, local_offset: int, value: int) -> bytes:
    """``data`` with a 2-byte field of every member's central and local zip header set to ``value``."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x01\x02", central_offset), (b"PK\x03\x04", local_offset)):
        at = out.find(signature)
        while at >= 0:
            out[at + offset:at + offset + 2] = value.to_bytes(2, "little")
            at = out.find(signature, at + 4)
    return bytes(out)


@pytest.mark.parametrize("case, central, local, value, fragment", [
    ("version", 6, 4, 255, "zip file version"),  # NotImplementedError before the fix (make fuzz)
    ("method", 10, 8, 99, "compression method"),  # NotImplementedError
    ("encrypted", 8, 6, 1, "encrypted"),  # RuntimeError: password required
])
def test_fuzz_finding_ek_zip_headers(saved_ek, tmp_path, case, central, local, value, fragment):
    """Zip headers that claim a newer zip version, an unknown compression or encryption (make fuzz,
    10,000 .ek inputs, 11 findings of these three kinds)."""
    path = tmp_path / f"{case}.ek"
    path.write_bytes(_patched_zip(saved_ek.read_bytes(), central, local, value))
    before = _tree(tmp_path)
    assert_user_error(edgekit("inspect", path), f"{case}.ek", fragment)
    assert _tree(tmp_path) == before


def test_fuzz_finding_pt_zip_version(tmp_path):
    """A .pt whose zip headers claim a zip version Python's zipfile lacks (NotImplementedError from the
    TorchScript sniffing before the fix; make fuzz, 10,000 .pt inputs, 4 findings): torch's own reader
    takes it, so the state_dict loads."""
    import torch

    from edgekit.zoo.mobilenetv2 import MobileNetV2

    saved = tmp_path / "saved.pth"
    torch.save(MobileNetV2(num_classes=4, width=0.35).state_dict(), saved)
    path = tmp_path / "version.pth"
    path.write_bytes(_patched_zip(saved.read_bytes(), 6, 4, 255))
    before = _tree(tmp_path)
    result = edgekit("inspect", path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "conv2d" in result.stdout and "depthwise_conv2d" in result.stdout
    assert _tree(tmp_path) == before


def test_fuzz_finding_onnx_op_name_with_control_characters(tmp_path):
    """An op type read from a corrupt file with a newline in it made a two-line error (make fuzz, 10,000
    .onnx inputs, 1 finding): every EdgekitError escapes control characters."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Con\nv\r", ["x"], ["y"], name="odd\x1a")
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), tmp_path / "m.onnx")
    result = edgekit("inspect", tmp_path / "m.onnx")
    assert_user_error(result, "m.onnx", "Con\\x0av\\x0d")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_fuzz_finding_torchscript_member_with_a_bad_checksum(tmp_path):
    """A TorchScript archive whose data.pkl no longer matches its CRC: torch's reader does not check it
    and spent seconds on the corrupt pickle (a 20 s "hang" under load in make fuzz); now refused first."""
    import zipfile

    import torch
    from torch import nn

    good = tmp_path / "good.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()), good)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))
    start = info.header_offset + 30 + len(info.filename.encode()) + int.from_bytes(
        data[info.header_offset + 28:info.header_offset + 30], "little")
    data[start + info.compress_size // 2] ^= 0x5A
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(data))
    before = _tree(tmp_path)
    assert_user_error(edgekit("inspect", path), "flipped.pt", "data.pkl does not match its checksum")
    assert _tree(tmp_path) == before


def test_fuzz_finding_ek_graph_input_that_is_not_a_name(saved_ek, tmp_path):
    """graph.json whose inputs list holds an object (TypeError: unhashable type before the fix)."""
    import zipfile

    path = tmp_path / "odd.ek"
    with zipfile.ZipFile(saved_ek) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "graph.json":
                doc = json.loads(content)
                doc["inputs"] = [{}]
                content = json.dumps(doc).encode()
            target.writestr(name, content)
    assert_user_error(edgekit("inspect", path), "odd.ek")


def test_fuzz_finding_npy_header_cut_mid_dict(models_dir, tmp_path):
    """A .npy header that ends inside its dict (tokenize.TokenError before the fix)."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, \n"
    path = tmp_path / "cut.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 8)
    assert_user_error(edgekit("infer", models_dir / VWW, "--input", path), "cut.npy", "not a .npy array")


def test_fuzz_finding_dense_weights_that_disagree_with_the_input(tmp_path):
    """An ONNX Gemm whose weights take 5 values from a 4-value input (a NumPy matmul error in the
    interpreter before the fix): refused by fully_connected's constraint, naming the node."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 5], [0.5] * 15)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="dense", transB=1)], "g", [x], [y],
                              [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "dense.onnx")
    assert_user_error(edgekit("inspect", tmp_path / "dense.onnx"), "dense", "weights")


# -- the corrupted-model cases, each built on purpose --------------------------------------------

def _tflite_case(kind: str) -> bytes:
    import tflite
    from test_tflite_import import _single_op_model, _softmax_options
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.BuiltinOptions import BuiltinOptions
    from tflite.TensorType import TensorType

    if kind == "negative_scale":  # "ValueError: multiplier must be non-negative" before the checks
        return _single_op_model(BuiltinOperator.SOFTMAX, [("x", (1, 10), TensorType.INT8, (-0.1, 0)),
                                                          ("y", (1, 10), TensorType.INT8, (1 / 256, -128))],
                                _softmax_options(1.0))

    def pool_options(b):  # stride 0: "ZeroDivisionError in ops/window.py" before the checks
        tflite.Pool2DOptionsStart(b)
        for add, value in ((tflite.Pool2DOptionsAddStrideW, 0), (tflite.Pool2DOptionsAddStrideH, 0),
                           (tflite.Pool2DOptionsAddFilterWidth, 2), (tflite.Pool2DOptionsAddFilterHeight, 2)):
            add(b, value)
        return tflite.Pool2DOptionsEnd(b)

    return _single_op_model(BuiltinOperator.MAX_POOL_2D, [("x", (1, 8, 8, 3), TensorType.INT8, (0.1, 0)),
                                                          ("y", (1, 4, 4, 3), TensorType.INT8, (0.1, 0))],
                            (BuiltinOptions.Pool2DOptions, pool_options))


def _onnx_pool(stride_attribute: bytes = b"strides", stride: int = 2) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[stride, stride])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString().replace(b"strides", stride_attribute)


@pytest.mark.parametrize("name, fragments", [
    ("negative_scale.tflite", ["negative_scale.tflite", "scale [-0.1"]),
    ("zero_stride.tflite", ["zero_stride.tflite", "stride 0"]),
    ("zero_stride.onnx", ["zero_stride.onnx", "stride 0"]),
    ("bytes_attribute.onnx", ["bytes_attribute.onnx", "not text"]),
])
def test_corrupt_values_in_model_files_are_one_line(name, fragments, tmp_path):
    """The issue's tracebacks on corrupted .tflite/.onnx files (negative scale, zero stride, an attribute
    name that is bytes) are one line naming the file and the value; nothing is written."""
    data = {"negative_scale.tflite": lambda: _tflite_case("negative_scale"),
            "zero_stride.tflite": lambda: _tflite_case("zero_stride"),
            "zero_stride.onnx": lambda: _onnx_pool(stride=0),
            "bytes_attribute.onnx": lambda: _onnx_pool(b"st\xffides")}[name]()
    (tmp_path / name).write_bytes(data)
    before = _tree(tmp_path)
    for command in ("inspect", "compile"):
        extra = ["--target", "cortex-m4", "-o", tmp_path / "out"] if command == "compile" else []
        assert_user_error(edgekit(command, tmp_path / name, *extra, cwd=tmp_path), *fragments)
    assert _tree(tmp_path) == before


def test_does_not_fit_json_carries_the_numbers(models_dir, tmp_path):
    """--json of a compile that does not fit: the activations case (ram_budget_bytes, arena_bytes,
    peak_node) and the linker case (overflows per region), the same numbers as the error line."""
    import re

    small = _own_target(tmp_path, "small-m4")
    small.write_text(small.read_text().replace("length = 262_144", "length = 24_576"))
    arena = edgekit("compile", models_dir / VWW, "--target-file", small, "--patch", "off", "--json",
                    "-o", tmp_path / "vww", cwd=tmp_path)
    assert arena.returncode == 3, arena.stderr
    doc = json.loads(arena.stdout)
    assert doc["fits"] is False and doc["ram_budget_bytes"] == 24_576 and doc["arena_bytes"] > 24_576
    assert f"{doc['arena_bytes']:,} B" in doc["error"] and doc["peak_node"] in doc["error"]
    tiny = _own_target(tmp_path, "tiny-m4")
    tiny.write_text(tiny.read_text().replace("length = 262_144", "length = 4_096"))
    linked = edgekit("compile", models_dir / HELLO, "--target-file", tiny, "--json", "-o", tmp_path / "hello",
                     cwd=tmp_path)
    assert linked.returncode == 3, linked.stderr
    doc = json.loads(linked.stdout)
    overflow = next(o for o in doc["overflows"] if o["region_bytes"] == 4_096)
    said = re.search(r"overflowed by ([\d,]+) bytes", doc["error"]).group(1)
    assert overflow["overflow_bytes"] == int(said.replace(",", "")) > 0
    assert not (tmp_path / "vww").exists() and not (tmp_path / "hello").exists()


def test_run_on_random_inputs_gives_no_accuracy_figure(tmp_path):
    """A float model that does not take images is calibrated on noise: `run` then prints no top-1
    figure (and --json has top1_agreement null) but still the cosine against the float model."""
    import onnx
    from onnx import TensorProto, helper

    rng = __import__("numpy").random.default_rng(1)
    weights = helper.make_tensor("w", TensorProto.FLOAT, [4, 16], rng.normal(0, 0.3, 64).tolist())
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="dense", transB=1)], "g", [x], [y],
                              [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "dense.onnx")
    compiled = edgekit("compile", tmp_path / "dense.onnx", "--target", "cortex-m4", "-o", tmp_path / "b")
    assert compiled.returncode == 0, compiled.stderr
    assert "synthetic" in compiled.stderr
    ran = edgekit("run", tmp_path / "b")
    assert ran.returncode == 0, ran.stderr
    assert "no accuracy figure" in ran.stdout and "top-1" not in ran.stdout and "cosine" in ran.stdout
    doc = json.loads(edgekit("run", tmp_path / "b", "--json").stdout)
    assert doc["top1_agreement"] is None and doc["real_inputs"] is False and doc["cosine"] is not None


def test_run_timeout_is_per_inference_and_broken_inputs_leave_the_build(models_dir, tmp_path):
    """--timeout bounds each inference: 300 inputs at 0.05 s each run (15 s in all), 0.001 s does not;
    a truncated .npy is refused before QEMU. The build folder stays as it was."""
    import numpy as np

    build = tmp_path / "b"
    assert _compile_hello(models_dir / HELLO, "-o", build, cwd=tmp_path).returncode == 0
    inputs = tmp_path / "many.npy"
    np.save(inputs, np.random.default_rng(0).integers(-128, 128, (300, 1, 1), dtype=np.int8))
    many = edgekit("run", build, "--inputs", inputs, "--timeout", "0.05", "--json")
    assert many.returncode == 0, many.stderr
    assert json.loads(many.stdout)["inputs"] == 300
    before = _tree(build)
    hung = edgekit("run", build, "--timeout", "0.001")
    assert hung.returncode == 4 and "Traceback" not in hung.stderr
    assert len([line for line in hung.stderr.splitlines() if line.startswith("edgekit: error:")]) == 1
    (tmp_path / "cut.npy").write_bytes(inputs.read_bytes()[:100])
    assert_user_error(edgekit("run", build, "--inputs", tmp_path / "cut.npy"), "cut.npy")
    assert _tree(build) == before
