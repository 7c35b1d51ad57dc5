"""Running firmware in QEMU: inputs in, outputs, instruction counts and stack use out.

The firmware's harness (firmware/main.c) reads `input.bin` and writes `output.bin` and
`stats.txt` through semihosting in QEMU's working directory, a fresh temporary folder per
run. The QEMU instruction counter plugin logs marker hits to `marks.log` there. The firmware's
exit status becomes QEMU's (SYS_EXIT_EXTENDED); its meaning is read from ek_runtime.h.
"""

import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from edgekit.build import Firmware
from edgekit.elf import symbol_address
from edgekit.errors import EdgekitError, ToolchainError
from edgekit.instruction_counter import MARKER_SYMBOLS, build_instruction_counter, parse_marker_log, plugin_argument
from edgekit.paths import FIRMWARE_DIR
from edgekit.scratch import scratch_folder
from edgekit.target import Target
from edgekit.toolchain import run_tool

DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class EmulatorResult:
    """What one QEMU run of the harness produced."""

    outputs: np.ndarray  # int8 [inferences, output bytes], one row per input record
    exit_code: int  # the firmware's EK_EXIT_* code
    exit_reason: str  # its meaning, from ek_runtime.h
    stack_high_water_bytes: int  # deepest stack use of the whole run, by painting (0 after a fault)
    stack_reserved_bytes: int  # 0 after a fault
    marks: list[list[int]]  # per inference: instructions between consecutive ek_mark() calls
    instructions_per_inference: list[int]  # per inference: ek_model_run from call to return
    console: str  # text the firmware printed through semihosting (fault messages)
    wall_s: float  # host seconds QEMU ran

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_firmware(
    firmware_or_elf: Firmware | Path,
    target: Target,
    inputs: np.ndarray,
    output_size: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> EmulatorResult:
    """Runs the firmware on `target`'s QEMU machine, once per row of `inputs` (int8 [N, EK_INPUT_SIZE]).

    Raises EdgekitError when the records do not match the firmware's EK_INPUT_SIZE or
    EK_OUTPUT_SIZE (`output_size`, when given), ToolchainError when QEMU fails or times out.
    A firmware that faults or whose model returns an error is a result, not an exception:
    see `exit_code` and `exit_reason`.
    """
    elf = Path(firmware_or_elf.elf if isinstance(firmware_or_elf, Firmware) else firmware_or_elf).resolve()
    inputs = np.ascontiguousarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim != 2:
        raise EdgekitError(f"inputs must be int8 [N, EK_INPUT_SIZE], got {inputs.dtype} {list(inputs.shape)}")
    with scratch_folder("qemu") as work:
        inputs.tofile(work / "input.bin")
        started = time.perf_counter()
        result = run_tool(
            _qemu_command(target, elf),
            cwd=work,
            timeout_s=timeout_s,
            timeout_hint=f": {elf.name} hung on {target.qemu_machine} (an endless loop, or a fault QEMU locked up on)",
        )
        wall_s = time.perf_counter() - started
        reasons = exit_reasons()
        if result.returncode not in reasons:
            raise ToolchainError(
                f"qemu-system-arm -M {target.qemu_machine} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or 'no message'}"
            )
        stats = _read_stats(work / "stats.txt")
        if stats:
            _check_record_sizes(stats, inputs.shape[1], output_size)
        counts = parse_marker_log((work / "marks.log").read_text())
        return EmulatorResult(
            outputs=_read_records(work / "output.bin", stats.get("output_record_bytes", output_size or 0)),
            exit_code=result.returncode,
            exit_reason=reasons[result.returncode],
            stack_high_water_bytes=stats.get("stack_high_water_bytes", 0),
            stack_reserved_bytes=stats.get("stack_reserved_bytes", 0),
            marks=[inference.layers for inference in counts],
            instructions_per_inference=[inference.total for inference in counts],
            console=(work / "console.txt").read_text(),
            wall_s=wall_s,
        )


def _qemu_command(target: Target, elf: Path) -> list[str]:
    """QEMU with semihosting (console to console.txt), no devices, and the instruction counter."""
    plugin = plugin_argument(
        build_instruction_counter(), [symbol_address(elf, name) for name in MARKER_SYMBOLS], "marks.log"
    )
    return [
        "qemu-system-arm", "-M", target.qemu_machine, "-nographic", "-monitor", "none", "-serial", "none",
        "-chardev", "file,id=ek_console,path=console.txt",
        "-semihosting-config", "enable=on,target=native,chardev=ek_console",
        "-plugin", plugin, "-kernel", str(elf),
    ]


@cache
def exit_reasons() -> dict[int, str]:
    """Exit code -> meaning, from the EK_EXIT_* definitions in firmware/ek_runtime.h."""
    header = (FIRMWARE_DIR / "ek_runtime.h").read_text()
    return {int(code): reason for code, reason in re.findall(r"#define EK_EXIT_\w+ (\d+)\s*/\* (.*?) \*/", header)}


def _read_stats(path: Path) -> dict[str, int]:
    """The harness's statistics; empty when the firmware stopped (a fault) before writing them."""
    if not path.exists():
        return {}
    return {name: int(value) for name, value in (line.split() for line in path.read_text().splitlines())}


def _read_records(path: Path, record_bytes: int) -> np.ndarray:
    """int8 [records, record_bytes]; only whole records, since a fault can stop a write midway."""
    if not record_bytes or not path.exists():
        return np.zeros((0, record_bytes), dtype=np.int8)
    data = np.fromfile(path, dtype=np.int8)
    return data[: len(data) // record_bytes * record_bytes].reshape(-1, record_bytes)


def _check_record_sizes(stats: dict[str, int], input_size: int, output_size: int | None) -> None:
    if stats["input_record_bytes"] != input_size:
        raise EdgekitError(
            f"inputs have {input_size} bytes per record, "
            f"but the firmware's EK_INPUT_SIZE is {stats['input_record_bytes']}"
        )
    if output_size is not None and stats["output_record_bytes"] != output_size:
        raise EdgekitError(
            f"output_size is {output_size}, but the firmware's EK_OUTPUT_SIZE is {stats['output_record_bytes']}"
        )
