"""The build folder: everything `edgekit run` and `edgekit report` need, without recompiling.

Layout: src/ (generated C), Makefile + firmware.elf/.bin/.map, model.ek (int8 graph),
float_model.ek (its float original, when there is one), test_inputs.npy, edgekit.json (plan,
sizes, settings), report.txt/report.json/memory.png. A compile writes a sibling temporary folder
and moves it into place only when everything succeeded, so a failed compile leaves nothing behind.
"""

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import EdgekitError

MANIFEST = "edgekit.json"


def check_destination(destination: Path, force: bool) -> None:
    """Refuse an existing destination without --force, and with it anything that is not a build folder
    (--force replaces an old build, never an arbitrary folder)."""
    destination = Path(destination)
    if not destination.exists():
        return
    if not force:
        raise EdgekitError(f"build folder {destination} exists; pass --force to replace it or -o another folder")
    if not destination.is_dir() or (any(destination.iterdir()) and not (destination / MANIFEST).is_file()):
        raise EdgekitError(f"{destination} exists and is not an edgekit build folder (no {MANIFEST}); "
                           "choose another -o, --force only replaces builds")


@contextmanager
def staged_folder(destination: Path, force: bool):
    """Yield a temporary folder beside ``destination``; on success it replaces ``destination``."""
    destination = Path(destination)
    check_destination(destination, force)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if destination.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        destination.rename(retired / destination.name)
        staging.rename(destination)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(destination)


def write_manifest(folder: Path, doc: dict) -> None:
    (Path(folder) / MANIFEST).write_text(json.dumps(doc, indent=1, default=to_jsonable))


def to_jsonable(value):
    """``json.dumps`` default for what edgekit documents hold: NumPy scalars and arrays, tuples, paths."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise EdgekitError(f"{folder} is not an edgekit build folder (no {MANIFEST}); run `edgekit compile` first")
    return json.loads(path.read_text())
