"""Targets: a CPU, its compiler flags, a board's memory budget and the QEMU machine that runs it.

Each target is one TOML file in `targets/` (data, no code). A memory region's origin is its
address in the QEMU machine's map and its length is the board's size, so an image that links
for the emulator also fits the board; `board_origin` records where the region is on the board.
"""

import tomllib
from dataclasses import dataclass

from edgekit.errors import EdgekitError, UnknownNameError
from edgekit.paths import TARGETS_DIR

ROLES = ("code", "ram", "external-weights")


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
    mve: bool = False  # Helium, the M-profile vector extension

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


def load_target(name: str) -> Target:
    """The target `name`; UnknownNameError lists the ones that exist."""
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise UnknownNameError(f"unknown target {name!r}: choose one of {', '.join(list_targets())}")
    with path.open("rb") as file:
        data = tomllib.load(file)
    try:
        target = _parse_target(data)
    except KeyError as error:
        raise EdgekitError(f"{path}: missing key {error.args[0]!r}") from error
    if target.name != name:
        raise EdgekitError(f"{path}: says name = {target.name!r}, expected {name!r} (the file name)")
    return target


def _parse_region(entry: dict, source: str) -> MemoryRegion:
    if entry["role"] not in ROLES:
        raise EdgekitError(f"{source}: memory {entry['name']!r} has role {entry['role']!r}, expected one of {ROLES}")
    return MemoryRegion(
        name=entry["name"],
        role=entry["role"],
        origin=entry["origin"],
        length=entry["length"],
        board_origin=entry.get("board_origin", entry["origin"]),
    )


def _parse_target(data: dict) -> Target:
    source = f"targets/{data['name']}.toml"
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
        mve=data["cpu"].get("mve", False),
        clock_hz=data["cpu"]["clock_hz"],
        regions=regions,
        qemu_machine=data["qemu"]["machine"],
        probe_target=data["probe"]["target"],
    )
