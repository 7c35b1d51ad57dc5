"""The build folder: everything `edgekit run`, `report`, `flash` and `monitor` need, without recompiling.

`BuildFolder` owns the file names and the loading and saving of what is in them, so no other module
spells a file name: src/ (generated C), Makefile + firmware.elf/.bin/.map, model.ek (int8 graph),
float_model.ek (its float original, when there is one), test_inputs.npy (+ test_inputs_float.npy),
edgekit.json (the manifest: settings, plan, sizes, and the last run's results),
arena_timeline.txt, report.txt/report.json/memory.png. A compile writes a sibling temporary folder
and moves it into place only when everything succeeded, so a failed compile leaves nothing behind.
"""

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import EdgekitError

MANIFEST = "edgekit.json"


class BuildFolder:
    """One build folder: its files' paths, and its documents read and written."""

    MODEL = "model.ek"
    FLOAT_MODEL = "float_model.ek"
    TEST_INPUTS = "test_inputs.npy"
    FLOAT_TEST_INPUTS = "test_inputs_float.npy"  # the float reference's view of the same inputs (calibration images)
    TIMELINE = "arena_timeline.txt"  # the ASCII arena timeline (TFLite Micro's PrintMemoryPlan style)
    REPORT_JSON = "report.json"
    REPORT_TEXT = "report.txt"
    MEMORY_PLOT = "memory.png"
    SOURCES = "src"
    ELF = "firmware.elf"
    BIN = "firmware.bin"

    def __init__(self, path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    @property
    def elf(self) -> Path:
        return self.path / self.ELF

    @property
    def bin(self) -> Path:
        return self.path / self.BIN

    @property
    def sources(self) -> Path:
        return self.path / self.SOURCES

    def manifest(self) -> dict:
        """edgekit.json; EdgekitError when this is not a build folder."""
        return read_manifest(self.path)

    def save_manifest(self, doc: dict) -> None:
        write_manifest(self.path, doc)

    def last_run(self) -> dict:
        """The last `edgekit run`'s results (RunResult.to_json()), or {} before the first run."""
        return self.manifest().get("last_run") or {}

    def save_run(self, run: dict) -> None:
        manifest = self.manifest()
        manifest["last_run"] = run
        self.save_manifest(manifest)

    def target(self):
        """The Target the build was compiled for."""
        from edgekit.target import load_target

        return load_target(self.manifest()["target"])

    def save_graphs(self, graph, float_graph) -> None:
        from edgekit.ir.serialize import save_graph

        save_graph(graph, self.path / self.MODEL)
        if float_graph is not None:
            save_graph(float_graph, self.path / self.FLOAT_MODEL)

    def load_graph(self):
        from edgekit.ir.serialize import load_graph

        return load_graph(self.path / self.MODEL)

    def load_float_graph(self):
        """The float original, or None (an imported int8 model has none)."""
        from edgekit.ir.serialize import load_graph

        path = self.path / self.FLOAT_MODEL
        return load_graph(path) if path.is_file() else None

    def save_test_inputs(self, inputs, float_inputs=None) -> None:
        import numpy as np

        np.save(self.path / self.TEST_INPUTS, inputs)
        if float_inputs is not None:
            np.save(self.path / self.FLOAT_TEST_INPUTS, float_inputs)

    def test_inputs(self, limit: int | None = None):
        """(int8 test inputs, their float originals or None), the first `limit` of each."""
        import numpy as np

        float_path = self.path / self.FLOAT_TEST_INPUTS
        floats = list(np.load(float_path))[:limit] if float_path.is_file() else None
        return np.load(self.path / self.TEST_INPUTS)[:limit], floats

    def save_timeline(self, text: str) -> None:
        (self.path / self.TIMELINE).write_text(text)

    def timeline(self) -> str:
        path = self.path / self.TIMELINE
        if not path.is_file():
            raise EdgekitError(f"{self.path} has no {self.TIMELINE}: it was built by an older edgekit; compile it again")
        return path.read_text()

    def save_report(self, report: dict, text: str) -> Path:
        """report.json and report.txt; returns where the plot goes (memory.png)."""
        (self.path / self.REPORT_JSON).write_text(json.dumps(report, indent=1, default=to_jsonable))
        (self.path / self.REPORT_TEXT).write_text(text)
        return self.path / self.MEMORY_PLOT


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
