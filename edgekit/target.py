"""Targets: a CPU, its compiler flags, a board's memory budget and the QEMU machine that runs it.

Each target is one TOML file in `targets/` (data, no code). A memory region's origin is its
address in the QEMU machine's map and its length is the board's size, so an image that links
for the emulator also fits the board; `board_origin` records where the region is on the board.
"""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError, UnknownNameError
from edgekit.paths import TARGETS_DIR

ROLES = ("code", "ram", "external-weights")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a file name in targets/, never a path; also names build folders


@dataclass(frozen=True)
class MemoryRegion:
    """One memory of the board: `role` says what the linker puts there."""

    name: str
    role: str
    origin: int
    length: int
    board_origin: int


@dataclass(frozen=True)
class Target:
    """A compile and emulation target, loaded from `targets/<name>.toml`."""

    name: str
    description: str
    cpu_flags: tuple[str, ...]
    dsp: bool
    clock_hz: int
    regions: tuple[MemoryRegion, ...]
    qemu_machine: str
    probe_target: str

    def region(self, role: str) -> MemoryRegion | None:
        """The region with this role, or None (only "external-weights" is optional)."""
        return next((region for region in self.regions if region.role == role), None)

    @property
    def flash(self) -> MemoryRegion:
        return self.region("code")

    @property
    def ram(self) -> MemoryRegion:
        return self.region("ram")

    @property
    def external_weights(self) -> MemoryRegion | None:
        return self.region("external-weights")


def list_targets() -> list[str]:
    """Names of the targets in `targets/`, sorted."""
    return sorted(path.stem for path in TARGETS_DIR.glob("*.toml"))


def shipped_file(directory: Path, kind: str, name: str, available: list[str], own_file_option: str) -> Path:
    """The file for ``name`` among those edgekit ships in ``directory``, looked up by name only (a path or
    ``..`` is an unknown name); UnknownNameError lists the names that exist."""
    if not NAME.fullmatch(name) or name not in available:
        raise UnknownNameError(f"unknown {kind} {name!r}: choose one of {', '.join(available)} "
                               f"(or give your own file with {own_file_option} PATH)")
    return directory / f"{name}.toml"


def load_target(name: str) -> Target:
    """The shipped target `name`; UnknownNameError lists the ones that exist."""
    path = shipped_file(TARGETS_DIR, "target", name, list_targets(), "--target-file")
    target = load_target_file(path)
    if target.name != name:
        raise EdgekitError(f"{path}: says name = {target.name!r}, expected {name!r} (the file name)")
    return target


def load_target_file(path) -> Target:
    """A target from a TOML file (a user's own with --target-file); its name must be a plain name,
    since it names the default build folder."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise EdgekitError(f"target file {path} cannot be read ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise EdgekitError(f"target file {path} is not valid TOML ({error})") from None
    try:
        target = _parse_target(data, path)
    except KeyError as error:
        raise EdgekitError(f"{path}: missing key {error.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise EdgekitError(f"{path}: a value has the wrong type ({error}); compare with targets/cortex-m4.toml"
                           ) from None
    if not isinstance(target.name, str) or not NAME.fullmatch(target.name):
        raise EdgekitError(f"{path}: name = {target.name!r} is not a plain name (lowercase letters, digits, "
                           "'.', '_', '-')")
    return target


def _parse_region(entry: dict, source: str) -> MemoryRegion:
    for key in ("origin", "length"):
        if not isinstance(entry[key], int) or entry[key] < 0:
            raise EdgekitError(f"{source}: memory {entry['name']!r} has {key} {entry[key]!r}, expected a byte count")
    if entry["role"] not in ROLES:
        raise EdgekitError(f"{source}: memory {entry['name']!r} has role {entry['role']!r}, expected one of {ROLES}")
    return MemoryRegion(
        name=entry["name"],
        role=entry["role"],
        origin=entry["origin"],
        length=entry["length"],
        board_origin=entry.get("board_origin", entry["origin"]),
    )


def _parse_target(data: dict, source: Path) -> Target:
    regions = tuple(_parse_region(entry, source) for entry in data["memory"])
    roles = [region.role for region in regions]
    for role in ROLES:
        allowed = (0, 1) if role == "external-weights" else (1,)
        if roles.count(role) not in allowed:
            expected = " or ".join(map(str, allowed))
            raise EdgekitError(f"{source}: {roles.count(role)} memories have role {role!r}, expected {expected}")
    return Target(
        name=data["name"],
        description=data["description"],
        cpu_flags=tuple(data["cpu"]["flags"]),
        dsp=data["cpu"]["dsp"],
        clock_hz=data["cpu"]["clock_hz"],
        regions=regions,
        qemu_machine=data["qemu"]["machine"],
        probe_target=data["probe"]["target"],
    )
