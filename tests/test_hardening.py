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


def _own_target(tmp_path, name: str):
    from edgekit.paths import TARGETS_DIR

    text = (TARGETS_DIR / "cortex-m4.toml").read_text().replace('name = "cortex-m4"', f'name = "{name}"', 1)
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
        _as_unprivileged([sys.executable, "-m", "edgekit.cli", "compile", str(models_dir / HELLO), "--target",
                          "cortex-m4", "-o", str(out / "b")]),
        capture_output=True, text=True, timeout=600, env=dict(os.environ, EDGEKIT_HOME=str(home), TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert list(home.iterdir()) == []
    assert (out / "b" / "firmware.elf").is_file()
    assert [p.name for p in scratch.iterdir()] == [f"edgekit-cache-{65534 if os.geteuid() == 0 else os.geteuid()}"]
