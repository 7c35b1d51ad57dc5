"""Temporary folders outside build folders, and the sweep that removes those a killed edgekit left.

Each is ``$TMPDIR/edgekit-<pid>-<purpose>-XXXXXXXX``: the process id in the name lets the next edgekit
tell a folder in use from one whose process died (SIGKILL cannot be caught; SIGTERM is, see cli.py)
and remove it. Only folders owned by the current user are touched.
"""

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

_NAME = re.compile(r"edgekit-(\d+)-[a-z]+-.+")


@contextmanager
def scratch_folder(purpose: str):
    """A temporary folder removed on exit, normal or not (``purpose``: lowercase letters)."""
    with tempfile.TemporaryDirectory(prefix=f"edgekit-{os.getpid()}-{purpose}-") as folder:
        yield Path(folder)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_scratch() -> list[Path]:
    """Remove the scratch folders whose edgekit process is gone; returns what was removed."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob("edgekit-*"):
        match = _NAME.fullmatch(path.name)
        try:
            owned = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if match and owned and not process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
