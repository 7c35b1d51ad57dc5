"""`edgekit flash`: put a board build's image on the board with pyOCD, OpenOCD or st-flash.

The probe names come from the board file (targets/boards/<name>.toml, `[probe]`). Without --probe
the first probe tool that sees an attached probe is used (pyOCD, then st-flash); OpenOCD cannot
list probes without a configuration, so it is used only when asked for. `--dry-run` prints the
exact commands instead.

External (QSPI) flash: the STM32F746G-DISCO's weights live in its QSPI flash at 0x90000000, in
the ELF's `.ek_extflash` section. OpenOCD's board configuration for the DISCO declares that flash
(its stmqspi driver), so `program firmware.elf` writes internal and QSPI flash in one go; pyOCD and
st-flash have no loader for it here, so a build with QSPI weights refuses them and says so.
At run time the board runtime switches the QSPI controller to memory-mapped mode before main.
"""

import shlex
import shutil
from dataclasses import dataclass

from edgekit.build_folder import BuildFolder
from edgekit.errors import EdgekitError, ToolchainError
from edgekit.target import Target, load_target
from edgekit.toolchain import first_error_line, run_tool

PROBES = ("pyocd", "openocd", "stlink")
FLASH_TIMEOUT_S = 300


@dataclass(frozen=True)
class FlashPlan:
    """The commands that flash one build with one probe tool."""

    probe: str
    commands: list[list[str]]  # run in order
    notes: list[str]  # what the user should know (one-time setup, external flash)

    def text(self) -> str:
        """The commands as a shell would take them, notes as comments."""
        return "\n".join([f"# {note}" for note in self.notes] + [shlex.join(command) for command in self.commands])


@dataclass(frozen=True)
class FlashResult:
    probe: str
    commands: list[list[str]]
    output: str


def build_target(folder: BuildFolder) -> tuple[Target, dict]:
    """The board a build folder was compiled for; an emulated CPU build cannot be flashed as is."""
    manifest = folder.manifest()
    target = load_target(manifest["target"])
    if not target.is_board:
        raise EdgekitError(f"{folder} was compiled for {target.name} in QEMU (linked at the emulator's addresses): "
                           f"compile with --board {target.board.name} to flash it")
    return target, manifest


def flash_plan(build_dir, probe: str) -> FlashPlan:
    """The commands that write `build_dir`'s image to its board with `probe`."""
    folder = BuildFolder(build_dir)
    target, manifest = build_target(folder)
    if probe not in PROBES:
        raise EdgekitError(f"--probe {probe!r}: choose one of {', '.join(PROBES)}")
    board, elf = target.board, str(folder.elf)
    external = manifest["sizes"].get("extflash", 0)
    notes = []
    if probe == "pyocd":
        commands = [["pyocd", "flash", "-t", board.probe.pyocd, elf]]
        if not board.probe.pyocd_builtin:
            notes.append(f"once per machine, pyOCD needs the device pack: pyocd pack install {board.probe.pyocd}")
    elif probe == "openocd":
        if not board.probe.openocd:
            raise EdgekitError(f"{board.name} has no OpenOCD configuration: use --probe pyocd")
        configs = [argument for config in board.probe.openocd for argument in ("-f", config)]
        commands = [["openocd", *configs, "-c", f"program {elf} verify reset exit"]]
    else:
        if not board.probe.stlink:
            raise EdgekitError(f"{board.name} has no ST-LINK: use --probe pyocd or --probe openocd")
        commands = [["st-flash", "--reset", "write", str(folder.bin), f"{target.flash.origin:#x}"]]
    if external:
        region = target.external_weights
        if probe != "openocd" or board.name != "stm32f746g-disco":
            raise EdgekitError(f"{folder} keeps {external:,} B of weights in {board.name}'s {region.name} flash at "
                               f"{region.origin:#x}, which {probe} cannot write: use --probe openocd (its board "
                               "configuration drives the QSPI flash), or compile a smaller model that fits internal flash")
        notes.append(f"{external:,} B of weights go to the {region.name} flash at {region.origin:#x} "
                     "(OpenOCD's stmqspi driver, declared by the board configuration)")
    return FlashPlan(probe, commands, notes)


def flash_build(build_dir, probe: str | None = None) -> FlashResult:
    """Flashes the build; without `probe`, the first tool that sees an attached probe.

    ToolchainError (exit 4) when the tool is missing, no probe is attached, or flashing fails.
    """
    target, _ = build_target(BuildFolder(build_dir))
    probe = probe or _attached_probe(target)
    plan = flash_plan(build_dir, probe)
    if probe == "pyocd" and not _pyocd_probes():
        raise ToolchainError(_no_probe_message(target))
    output = []
    for command in plan.commands:
        result = run_tool(command, timeout_s=FLASH_TIMEOUT_S, timeout_hint=f": is the {target.board.name} connected?")
        output.append(result.stdout + result.stderr)
        if result.returncode != 0:
            looked = f" (looked for the probe of {' '.join(target.board.probe.openocd)})" if probe == "openocd" else ""
            raise ToolchainError(f"{command[0]} failed for {target.board.name}: {_diagnostic(result.stdout + result.stderr)}"
                                 f"{looked}; is the board's debug USB port connected?")
    return FlashResult(probe, plan.commands, "".join(output))


def _diagnostic(output: str) -> str:
    """The line of a flash tool's output that names the problem (OpenOCD "Error: ...", st-flash's WARN)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error") or "WARN" in line or "ERROR" in line:
            return line
    return first_error_line(output)


def _pyocd_probes() -> list:
    from pyocd.probe.aggregator import DebugProbeAggregator

    return DebugProbeAggregator.get_all_connected_probes()


def _stlink_probes() -> bool:
    if shutil.which("st-info") is None:
        return False
    result = run_tool(["st-info", "--probe"], timeout_s=30)
    return "Found 0 stlink" not in result.stdout and result.returncode == 0


def _attached_probe(target: Target) -> str:
    if _pyocd_probes():
        return "pyocd"
    if target.board.probe.stlink and _stlink_probes():
        return "stlink"
    raise ToolchainError(_no_probe_message(target))


def _no_probe_message(target: Target) -> str:
    looked = "pyOCD found no CMSIS-DAP, ST-LINK or J-Link probe" + (
        ", st-info --probe found no ST-LINK" if target.board.probe.stlink else "")
    return (f"no debug probe attached for {target.board.name}: {looked}; connect the board's debug USB port "
            "(or pass --probe openocd to try OpenOCD's configuration)")
