"""The local weight cache ($EDGEKIT_HOME, default ~/.cache/edgekit).

edgekit never downloads at run time: ``make setup`` places verified files here, and a missing file
is a one-line error that says so.
"""

import hashlib
from pathlib import Path

from edgekit.errors import ModelFileError
from edgekit.paths import cache_dir


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_weights(filename: str, sha256_prefix: str) -> Path:
    """Path of a verified weight file in the cache; ModelFileError when missing or corrupt."""
    path = cache_dir() / "weights" / filename
    if not path.is_file():
        raise ModelFileError(f"pretrained weights {filename} are not in {path.parent}; run `make setup` "
                             "(or pass pretrained=False for random weights)")
    if not sha256_of(path).startswith(sha256_prefix):
        raise ModelFileError(f"{path} does not match its sha256 prefix {sha256_prefix}; delete it and run "
                             "`make setup` again")
    return path
