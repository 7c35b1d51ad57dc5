"""Where edgekit's data folders and its cache live.

`targets/` and `firmware/` sit next to the package in the repository; an editable install
(``pip install -e .``) imports the package from the checkout, so paths relative to this file
find them in both cases. The cache holds things built once per machine (the QEMU plugin).
"""

import os
import stat
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS_DIR = REPO_ROOT / "targets"
FIRMWARE_DIR = REPO_ROOT / "firmware"


def cache_dir() -> Path:
    """``$EDGEKIT_HOME``, or ``~/.cache/edgekit``; read on each call so tests can redirect it."""
    return Path(os.environ.get("EDGEKIT_HOME", Path.home() / ".cache" / "edgekit"))


def writable_cache_dir() -> Path:
    """Where edgekit caches what it builds (kernels, the QEMU plugin): ``cache_dir()`` when it can be
    written, else a private per-user folder in $TMPDIR, so a read-only $EDGEKIT_HOME only costs time."""
    from edgekit.errors import EdgekitError

    home = cache_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK | os.X_OK):
            return home
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"edgekit-cache-{os.getuid()}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        info = fallback.lstat()
    except OSError as error:
        raise EdgekitError(f"$EDGEKIT_HOME {home} is read-only and {fallback} cannot be made ({error.strerror}); "
                           "set EDGEKIT_HOME to a writable folder") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise EdgekitError(f"$EDGEKIT_HOME {home} is read-only and {fallback} is not a private folder of yours; "
                           "set EDGEKIT_HOME to a writable folder")
    return fallback
