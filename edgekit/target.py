"""Targets: a CPU (compiler flags, DSP/FPU/MVE features, the QEMU machine that emulates it) and a
board (which CPU, memory regions at their real addresses, clock, UART, probe names).

Both are data: `targets/cpus/<name>.toml` and `targets/boards/<name>.toml`. A compile names one:

- a CPU (`--target cortex-m7`): the image is linked for the CPU's QEMU machine, region by region at
  the machine's addresses but with the sizes of the CPU's default board, so an image that links and
  runs in the emulator fits that board. Its harness talks to the host through semihosting.
- a board (`--board stm32f746g-disco`): the image is linked at the board's real addresses, with the
  board runtime (clock, UART, cycle counter) and a harness that prints over the UART. It runs on the
  board, and in QEMU only when QEMU emulates the board itself (`netduinoplus2`).

A user's own board is a file with a board file's keys (`--target-file PATH`): it is emulated like a CPU
target, on its CPU's QEMU machine with its memory sizes. Shipped CPUs and boards are looked up by name
only: a name is a plain name, never a path.

Either way the result is one `Target`, which the planner, code generator, linker and emulator read.
"""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError, UnknownNameError
from edgekit.paths import TARGETS_DIR

CPUS_DIR = TARGETS_DIR / "cpus"
BOARDS_DIR = TARGETS_DIR / "boards"
ROLES = ("code", "ram", "external-weights", "unused")
#: roles the linker script places; "unused" regions are listed, not linked
LINKED_ROLES = ("code", "ram", "external-weights")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a file name in targets/, never a path; also names build folders


@dataclass(frozen=True)
class MemoryRegion:
    """One memory of the board: `role` says what the linker puts there."""

    name: str
    role: str
    origin: int  # where the image links it (the QEMU machine's address for a CPU target)
    length: int
    board_origin: int  # where it is on the board


@dataclass(frozen=True)
class Cpu:
    """A core as the compiler and the emulator see it (`targets/cpus/<name>.toml`)."""

    name: str
    description: str
    flags: tuple[str, ...]
    fpu: str | None  # e.g. "fpv5-sp-d16"; None without an FPU
    dsp: bool  # Armv7E-M DSP instructions (SMLAD, ...)
    mve: bool  # Helium (Armv8.1-M M-profile vector extension)
    default_board: str  # whose memory sizes `--target NAME` links with
    qemu_machine: str
    qemu_origins: dict[str, int]  # role -> address in the QEMU machine's map


@dataclass(frozen=True)
class Uart:
    """The UART the board runtime prints on (the one wired to the probe's virtual COM port)."""

    instance: str
    base: int
    layout: str  # register layout: "sr" (STM32F4), "isr" (STM32F7/H7/L4), "nrf-uart"
    tx_pin: str
    baud: int
    alternate_function: int | None
    bus: str | None  # the peripheral bus whose clock drives the UART ("apb1", "apb2")
    rcc_enable_offset: int | None
    rcc_enable_bit: int | None


@dataclass(frozen=True)
class Probe:
    """How debug probes name the board's chip."""

    pyocd: str  # pyOCD target type
    pyocd_builtin: bool  # in pyOCD's own list; otherwise it comes from a CMSIS pack
    openocd: tuple[str, ...]  # OpenOCD config files (-f), relative to its scripts folder
    stlink: bool  # st-flash (stlink-tools) can write it


@dataclass(frozen=True)
class Board:
    """A board (`targets/boards/<name>.toml`): a CPU plus memories, clock, UART and probe names."""

    name: str
    description: str
    cpu: str
    clock_hz: int  # the chip's rated clock
    runtime: str | None  # firmware/board/<runtime>.c; None: no board runtime yet
    clock: dict  # clock settings for the runtime (PLL factors, or the reset clock it keeps)
    uart: Uart | None
    qemu_machine: str | None  # set when QEMU emulates this board itself
    qemu_serial_index: int  # which -serial port of that machine is `uart`
    probe: Probe
    qspi: dict  # memory-mapped external flash set up by the runtime (pins, prescaler, read_instruction); {} if none
    regions: tuple[MemoryRegion, ...]


@dataclass(frozen=True)
class Target:
    """What a compile is for: a CPU with a board's memories, as an emulated CPU target or as the board."""

    name: str
    description: str
    cpu_flags: tuple[str, ...]
    dsp: bool
    clock_hz: int
    regions: tuple[MemoryRegion, ...]
    qemu_machine: str | None  # None: no emulator runs this image
    probe_target: str  # pyOCD target type of the board
    cpu: Cpu | None = None
    board: Board | None = None
    harness: str = "semihosting"  # how the firmware reports: "semihosting" (QEMU) or "uart" (a board)

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

    @property
    def mve(self) -> bool:
        return bool(self.cpu and self.cpu.mve)

    @property
    def fpu(self) -> str | None:
        return self.cpu.fpu if self.cpu else None

    @property
    def is_board(self) -> bool:
        """True for a board image (real addresses, UART harness), False for an emulated CPU target."""
        return self.harness == "uart"


def list_targets() -> list[str]:
    """Names of the CPUs in `targets/cpus/`, sorted (each is a `--target`)."""
    return sorted(path.stem for path in CPUS_DIR.glob("*.toml"))


def list_boards() -> list[str]:
    """Names of the boards in `targets/boards/`, sorted (each is a `--board`)."""
    return sorted(path.stem for path in BOARDS_DIR.glob("*.toml"))


def load_target(name: str) -> Target:
    """The target `name`: a CPU (emulated, with its default board's budget) or a board (its own image).

    UnknownNameError lists the CPUs and boards that exist.
    """
    if NAME.fullmatch(name) and name in list_targets():
        cpu = load_cpu(name)
        return _cpu_target(cpu, load_board(cpu.default_board))
    if NAME.fullmatch(name) and name in list_boards():
        return board_target(name)
    raise UnknownNameError(f"unknown target {name!r}: choose a CPU ({', '.join(list_targets())}) "
                           f"or a board ({', '.join(list_boards())}) (or give your own file with --target-file PATH)")


def load_target_file(path) -> Target:
    """A user's own board file (the keys of targets/boards/*.toml), emulated on its CPU's QEMU machine with
    its memory sizes; its name must be a plain name, since it names the default build folder."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise EdgekitError(f"target file {path} cannot be read ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise EdgekitError(f"target file {path} is not valid TOML ({error})") from None
    try:
        board = _parse_board(data, str(path))
    except KeyError as error:
        raise EdgekitError(f"{path}: missing key {error.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise EdgekitError(f"{path}: a value has the wrong type ({error}); compare with "
                           "targets/boards/nrf52840-dk.toml") from None
    if not isinstance(board.name, str) or not NAME.fullmatch(board.name):
        raise EdgekitError(f"{path}: name = {board.name!r} is not a plain name (lowercase letters, digits, "
                           "'.', '_', '-')")
    if not (isinstance(board.cpu, str) and NAME.fullmatch(board.cpu) and board.cpu in list_targets()):
        raise EdgekitError(f"{path}: cpu = {board.cpu!r} is not one of {', '.join(list_targets())}")
    return _cpu_target(load_cpu(board.cpu), board, name=board.name)


def load_cpu(name: str) -> Cpu:
    data, source = _read(CPUS_DIR, name, "CPU", list_targets)
    try:
        qemu = data["qemu"]
        origins = {role: qemu[f"{role.replace('-', '_')}_origin"] for role in LINKED_ROLES
                   if f"{role.replace('-', '_')}_origin" in qemu}
        return Cpu(name=data["name"], description=data["description"], flags=tuple(data["flags"]),
                   fpu=data["features"].get("fpu"), dsp=data["features"]["dsp"], mve=data["features"]["mve"],
                   default_board=data["default_board"], qemu_machine=qemu["machine"], qemu_origins=origins)
    except KeyError as error:
        raise EdgekitError(f"{source}: missing key {error.args[0]!r}") from error


def load_board(name: str) -> Board:
    data, source = _read(BOARDS_DIR, name, "board", list_boards)
    try:
        board = _parse_board(data, source)
    except KeyError as error:
        raise EdgekitError(f"{source}: missing key {error.args[0]!r}") from error
    if not (CPUS_DIR / f"{board.cpu}.toml").is_file():
        raise EdgekitError(f"{source}: cpu = {board.cpu!r} is not in targets/cpus/")
    return board


def board_target(name: str) -> Target:
    """The board `name` as a target: real addresses, board runtime, UART harness."""
    board = load_board(name)
    cpu = load_cpu(board.cpu)
    if board.runtime is None or board.uart is None:
        raise EdgekitError(f"board {name!r} has no board runtime (UART, clock) yet: use --target {cpu.name}, "
                           "which runs in QEMU with this board's memory sizes")
    return Target(name=board.name, description=board.description, cpu_flags=cpu.flags, dsp=cpu.dsp,
                  clock_hz=board.clock_hz, regions=board.regions, qemu_machine=board.qemu_machine,
                  probe_target=board.probe.pyocd, cpu=cpu, board=board, harness="uart")


def _cpu_target(cpu: Cpu, board: Board, name: str | None = None) -> Target:
    """The CPU on its QEMU machine: each linked region of the board moved to the machine's address."""
    regions = tuple(MemoryRegion(r.name, r.role, cpu.qemu_origins[r.role], r.length, r.origin)
                    for r in board.regions if r.role in cpu.qemu_origins)
    return Target(name=name or cpu.name, description=f"{cpu.description}; budget of {board.description}",
                  cpu_flags=cpu.flags, dsp=cpu.dsp, clock_hz=board.clock_hz, regions=regions,
                  qemu_machine=cpu.qemu_machine, probe_target=board.probe.pyocd, cpu=cpu, board=board)


def _read(folder: Path, name: str, kind: str, names) -> tuple[dict, str]:
    path = folder / f"{name}.toml"
    if not NAME.fullmatch(name) or name not in names():
        raise UnknownNameError(f"unknown {kind} {name!r}: choose one of {', '.join(names())}")
    with path.open("rb") as file:
        data = tomllib.load(file)
    source = f"targets/{folder.name}/{name}.toml"
    if data.get("name") != name:
        raise EdgekitError(f"{source}: says name = {data.get('name')!r}, expected {name!r} (the file name)")
    return data, source


def _parse_region(entry: dict, source: str) -> MemoryRegion:
    for key in ("origin", "length"):
        if not isinstance(entry[key], int) or entry[key] < 0:
            raise EdgekitError(f"{source}: memory {entry['name']!r} has {key} {entry[key]!r}, expected a byte count")
    if entry["role"] not in ROLES:
        raise EdgekitError(f"{source}: memory {entry['name']!r} has role {entry['role']!r}, expected one of {ROLES}")
    return MemoryRegion(name=entry["name"], role=entry["role"], origin=entry["origin"], length=entry["length"],
                        board_origin=entry["origin"])


def _parse_board(data: dict, source: str) -> Board:
    regions = tuple(_parse_region(entry, source) for entry in data["memory"])
    roles = [region.role for region in regions]
    for role in LINKED_ROLES:
        allowed = (0, 1) if role == "external-weights" else (1,)
        if roles.count(role) not in allowed:
            expected = " or ".join(map(str, allowed))
            raise EdgekitError(f"{source}: {roles.count(role)} memories have role {role!r}, expected {expected}")
    uart = data.get("uart")
    probe = data["probe"]
    qemu = data.get("qemu", {})
    return Board(
        name=data["name"], description=data["description"], cpu=data["cpu"], clock_hz=data["clock_hz"],
        runtime=data.get("runtime"), clock=data.get("clock", {}),
        uart=Uart(instance=uart["instance"], base=uart["base"], layout=uart["layout"], tx_pin=uart["tx_pin"],
                  baud=uart["baud"], alternate_function=uart.get("alternate_function"), bus=uart.get("bus"),
                  rcc_enable_offset=uart.get("rcc_enable_offset"),
                  rcc_enable_bit=uart.get("rcc_enable_bit")) if uart else None,
        qemu_machine=qemu.get("machine"), qemu_serial_index=qemu.get("serial_index", 0),
        probe=Probe(pyocd=probe["pyocd"], pyocd_builtin=probe["pyocd_builtin"], openocd=tuple(probe["openocd"]),
                    stlink=probe["stlink"]),
        qspi=data.get("qspi", {}),
        regions=regions,
    )
