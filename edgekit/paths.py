"""Where edgekit's data folders and its cache live.

`targets/` and `firmware/` sit next to the package in the repository; an editable install
(``pip install -e .``) imports the package from the checkout, so paths relative to this file
find them in both cases. The cache holds things built once per machine (the QEMU plugin).
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS_DIR = REPO_ROOT / "targets"
FIRMWARE_DIR = REPO_ROOT / "firmware"


def cache_dir() -> Path:
    """``$EDGEKIT_HOME``, or ``~/.cache/edgekit``; read on each call so tests can redirect it."""
    return Path(os.environ.get("EDGEKIT_HOME", Path.home() / ".cache" / "edgekit"))
