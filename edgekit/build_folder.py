"""The build folder: everything `edgekit run`, `report`, `flash` and `monitor` need, without recompiling.

`BuildFolder` owns the file names and the loading and saving of what is in them, so no other module
spells a file name: src/ (generated C), Makefile + firmware.elf/.bin/.map, model.ek (int8 graph),
float_model.ek (its float original, when there is one), test_inputs.npy (+ test_inputs_float.npy),
edgekit.json (the manifest: settings, plan, sizes, and the last run's results), plan.json (the plan
the code generator printed: every step's kernel variant, buffers and scratch),
arena_timeline.txt, report.txt/report.json/memory.png, and `.edgekit-build` (the marker below).

How a compile keeps the user's files safe:

- it writes a staging folder beside the destination (``.NAME.edgekit-staging-XXXX``) and moves it into
  place only when everything succeeded, so a failed or interrupted compile leaves nothing behind;
- ``--force`` replaces only a folder that edgekit wrote: its marker names a build id that
  edgekit.json repeats and lists every file the compile wrote, and the folder holds nothing else
  (a file of the user's inside it, or a marker-less folder, is refused);
- a lock (``fcntl.flock`` on ``.NAME.edgekit-lock`` beside it) stops two compiles writing one folder;
  the holder of the lock removes staging folders that a killed compile left;
- the destination's parent must be writable, checked before any work.
"""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

from edgekit.errors import EdgekitError

MANIFEST = "edgekit.json"
MARKER = ".edgekit-build"
MARKER_FORMAT = "edgekit-build/1"
STAGING = "edgekit-staging"
LOCK = "edgekit-lock"


def _marked_files(folder: Path) -> set[str] | None:
    """The files the marker says edgekit wrote, when the marker and edgekit.json agree on the build id."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(manifest, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    if not marker.get("build_id") or marker.get("build_id") != manifest.get("build_id"):
        return None
    files = marker.get("files")
    return set(files) if isinstance(files, list) and all(isinstance(f, str) for f in files) else None


def _files_in(folder: Path) -> set[str]:
    """Every entry under ``folder`` that is not a directory (symlinks included), as relative paths."""
    found = set()
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


class BuildFolder:
    """One build folder: its files' paths, and its documents read and written."""

    MODEL = "model.ek"
    FLOAT_MODEL = "float_model.ek"
    TEST_INPUTS = "test_inputs.npy"
    FLOAT_TEST_INPUTS = "test_inputs_float.npy"  # the float reference's view of the same inputs (calibration images)
    TIMELINE = "arena_timeline.txt"  # the ASCII arena timeline (TFLite Micro's PrintMemoryPlan style)
    REPORT_JSON = "report.json"
    PLAN = "plan.json"  # codegen.step_plan.Plan.to_json()
    REPORT_TEXT = "report.txt"
    MEMORY_PLOT = "memory.png"
    SOURCES = "src"
    ELF = "firmware.elf"
    BIN = "firmware.bin"
    OWN_TARGET = "target.toml"  # a copy of --target-file, so the build runs without the user's file

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
        """The Target the build was compiled for (its copy of the user's --target-file, if it has one)."""
        from edgekit.target import load_target, load_target_file

        own = self.path / self.OWN_TARGET
        return load_target_file(own) if own.is_file() else load_target(self.manifest()["target"])

    def save_own_target(self, target_file) -> None:
        shutil.copyfile(target_file, self.path / self.OWN_TARGET)

    def save_graphs(self, graph, float_graph, preprocess=None) -> None:
        """model.ek keeps the preprocessing, so `edgekit infer model.ek --input IMAGE` sees what the
        compile saw."""
        from edgekit.ir.serialize import save_graph

        save_graph(graph, self.path / self.MODEL, preprocess)
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

    def save_plan(self, plan: dict) -> None:
        (self.path / self.PLAN).write_text(json.dumps(plan, indent=1, default=to_jsonable))

    def plan(self) -> dict:
        """plan.json; EdgekitError for a build an older edgekit wrote without one."""
        path = self.path / self.PLAN
        if not path.is_file():
            raise EdgekitError(f"{self.path} has no {self.PLAN}: it was built by an older edgekit; compile it again")
        return json.loads(path.read_text())

    def save_report(self, report: dict, text: str) -> Path:
        """report.json and report.txt; returns where the plot goes (memory.png)."""
        (self.path / self.REPORT_JSON).write_text(json.dumps(report, indent=1, default=to_jsonable))
        (self.path / self.REPORT_TEXT).write_text(text)
        return self.path / self.MEMORY_PLOT


def check_destination(destination: Path, force: bool) -> None:
    """Refuse, before any work: an existing destination without --force; with it, anything that edgekit did
    not write (see the module doc); and a destination whose parent cannot be written."""
    try:
        _check_destination(Path(destination), force)
    except OSError as error:  # e.g. a parent folder that cannot be searched
        raise EdgekitError(f"cannot write {destination} ({error.strerror or error}); choose another -o") from None


def _check_destination(destination: Path, force: bool) -> None:
    if destination.is_symlink() or destination.exists():
        if not force:
            raise EdgekitError(f"build folder {destination} exists; pass --force to replace it or -o another folder")
        if destination.is_symlink() or not destination.is_dir():
            raise EdgekitError(f"{destination} exists and is not a folder; choose another -o")
        if any(destination.iterdir()):
            marked = _marked_files(destination)
            if marked is None:
                raise EdgekitError(f"{destination} exists and is not an edgekit build folder (no valid {MARKER}); "
                                   "choose another -o (--force only replaces builds this edgekit wrote)")
            extra = sorted(_files_in(destination) - marked - {MARKER})
            if extra:
                raise EdgekitError(f"{destination} holds files edgekit did not write ({', '.join(extra[:3])}"
                                   f"{', ...' if len(extra) > 3 else ''}); move them out or choose another -o")
    check_writable_parent(destination)


def check_writable_parent(path: Path) -> None:
    """The folder that will hold ``path`` (or its nearest existing ancestor) must be a writable folder."""
    parent = _nearest_existing(Path(path).parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise EdgekitError(f"cannot write {path}: {parent} is not a writable folder; choose another location")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@contextlib.contextmanager
def locked_destination(destination: Path, force: bool):
    """Hold the destination's lock for the whole compile (checks included) and sweep what killed compiles
    left beside it; a second compile into the same folder is refused at once. The lock file is removed
    when the compile ends; a lock taken on a file that was removed meanwhile is taken again."""
    destination = Path(destination)
    check_destination(destination, force)
    lock_path = destination.parent / f".{destination.name}.{LOCK}"
    made_parent = not destination.parent.exists()
    while True:
        handle = _open_lock(lock_path, destination)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise EdgekitError(f"another edgekit compile ({owner}) is writing {destination}; wait for it to "
                               "finish or choose another -o") from None
        try:
            same_file = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        handle.close()
    with handle:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            _remove_stale_staging(destination)
            check_destination(destination, force)  # again, now that nobody else can change it
            yield
        finally:
            lock_path.unlink(missing_ok=True)
            if made_parent and not destination.exists():
                with contextlib.suppress(OSError):
                    destination.parent.rmdir()  # only when empty


def _open_lock(lock_path: Path, destination: Path):
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return open(lock_path, "a+")
    except OSError as error:
        raise EdgekitError(f"cannot write the build folder {destination} ({error.strerror}); choose another -o"
                           ) from None


def _remove_stale_staging(destination: Path) -> None:
    """Staging folders of this destination that no compile owns any more (the caller holds the lock)."""
    for path in destination.parent.glob(f".{destination.name}.{STAGING}-*"):
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(destination: Path, force: bool):
    """Yield a staging folder beside ``destination``; on success it replaces ``destination`` with a marker
    listing its files. Call it inside ``locked_destination``."""
    destination = Path(destination)
    check_destination(destination, force)
    staging = None
    try:
        with _signals_deferred():  # SIGTERM right after mkdtemp would otherwise leave the folder
            staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{STAGING}-", dir=destination.parent))
        yield staging
        _write_marker(staging)
        if destination.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{STAGING}-old-", dir=destination.parent))
            destination.rename(retired / destination.name)
            staging.rename(destination)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(destination)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGTERM and SIGINT back while a temporary folder is made and its name kept."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _write_marker(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    marker = {"format": MARKER_FORMAT, "build_id": manifest["build_id"], "files": sorted(_files_in(folder))}
    (folder / MARKER).write_text(json.dumps(marker, indent=1))


def new_build_id() -> str:
    return uuid.uuid4().hex


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
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EdgekitError(f"{path} cannot be read ({error}); compile the build again") from None
    if not isinstance(doc, dict):
        raise EdgekitError(f"{path} is not an edgekit manifest; compile the build again")
    return doc
