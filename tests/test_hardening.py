"""Hardening: what an attacker's or a careless user's input does to edgekit, run as the CLI runs.

Each case must end in one `edgekit: error:` line with the right exit code (no traceback), run no code
from the input, and leave the user's files and build folders as they were.
"""

import pickle

import pytest

from test_cli import assert_user_error, edgekit

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
