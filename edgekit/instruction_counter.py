"""Counting guest instructions in QEMU with edgekit's TCG plugin (firmware/qemu_plugin/).

QEMU does not model time, so edgekit reports executed instructions. The plugin logs the
running count whenever execution reaches `ek_mark` (marker 0, called by generated code at
the start of ek_model_run and after every layer) or `ek_inference_boundary` (marker 1,
called by the harness just before and just after each ek_model_run). The counts do not
depend on how QEMU splits translation blocks, so they are the same on every run.

Debian ships no qemu-plugin.h, so the plugin brings its own minimal header; it is built once
with the host gcc into $EDGEKIT_HOME/qemu-plugin/ (`make setup`, or lazily on first use).
"""

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ToolchainError
from edgekit.paths import FIRMWARE_DIR, writable_cache_dir
from edgekit.toolchain import first_error_line, run_tool

PLUGIN_SOURCE_DIR = FIRMWARE_DIR / "qemu_plugin"
MARKER_SYMBOLS = ("ek_mark", "ek_inference_boundary")  # plugin marker index = position here
_LAYER_MARK = MARKER_SYMBOLS.index("ek_mark")


def build_instruction_counter(force: bool = False) -> Path:
    """The plugin's shared library, compiled with the host gcc unless a current build is cached.

    The file name carries a hash of the plugin's sources, so an edited plugin is rebuilt.
    """
    sources = sorted(PLUGIN_SOURCE_DIR.glob("*.[ch]"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    library = writable_cache_dir() / "qemu-plugin" / f"libek_icount-{digest}.so"
    if library.is_file() and not force:
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    partial = library.with_suffix(f".{os.getpid()}.tmp")
    result = run_tool(
        ["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
         "-o", str(partial), str(PLUGIN_SOURCE_DIR / "ek_icount.c")]
    )
    if result.returncode != 0:
        raise ToolchainError(f"building the QEMU instruction counter failed: {first_error_line(result.stderr)}")
    partial.replace(library)  # atomic, so concurrent builds never load a half-written file
    return library


def plugin_argument(library: Path, marker_addresses: list[int], log_name: str) -> str:
    """The value of QEMU's -plugin option; `log_name` is relative to QEMU's working directory."""
    return ",".join([str(library), f"log={log_name}", *(f"at={address:#x}" for address in marker_addresses)])


@dataclass(frozen=True)
class InferenceCounts:
    """Instruction counts of one inference."""

    total: int  # from the harness's mark before ek_model_run to its mark after it
    layers: list[int]  # between consecutive ek_mark() calls inside ek_model_run


def parse_marker_log(text: str) -> list[InferenceCounts]:
    """Per-inference counts from the plugin's log; an unfinished last inference is left out."""
    inferences = []
    started_at = None
    layer_marks: list[int] = []
    for line in text.splitlines():
        marker, count = (int(field) for field in line.split())
        if marker == _LAYER_MARK:
            layer_marks.append(count)
        elif started_at is None:
            started_at, layer_marks = count, []
        else:
            layers = [later - earlier for earlier, later in zip(layer_marks, layer_marks[1:])]
            inferences.append(InferenceCounts(total=count - started_at, layers=layers))
            started_at = None
    return inferences


if __name__ == "__main__":  # `make setup` builds the plugin ahead of the first run
    print(build_instruction_counter(force="--force" in sys.argv))
