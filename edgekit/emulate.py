"""Running firmware in QEMU: inputs in, outputs, instruction counts and stack use out.

An emulated CPU target's harness (firmware/main.c) reads `input.bin` and writes `output.bin` and
`stats.txt` through semihosting in QEMU's working directory, a fresh temporary folder per
run; the firmware's exit status becomes QEMU's (SYS_EXIT_EXTENDED). A board image (a board QEMU
emulates, e.g. netduinoplus2) runs unchanged: its harness runs the inputs embedded in flash and
prints over its UART, which QEMU connects to a pipe; the run ends at the harness's end or fault
line, and QEMU is then stopped (a board has nothing to exit to). Either way the QEMU instruction
counter plugin logs marker hits to `marks.log`, and exit codes mean what ek_runtime.h says.
"""

import os
import re
import selectors
import subprocess
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
from edgekit.progress import QUIET, counting
from edgekit.scratch import scratch_folder
from edgekit.target import Target
from edgekit.toolchain import find_tool, run_tool
from edgekit.uart_report import UartReport

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
    console: str  # text the firmware printed through semihosting (fault messages), or its UART lines
    wall_s: float  # host seconds QEMU ran
    cycles_per_inference: list[int] = ()  # board images: the DWT cycle counter (QEMU does not count: 0)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_firmware(
    firmware_or_elf: Firmware | Path,
    target: Target,
    inputs: np.ndarray,
    output_size: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress=QUIET,
) -> EmulatorResult:
    """Runs the firmware on `target`'s QEMU machine, once per row of `inputs` (int8 [N, EK_INPUT_SIZE]).

    Raises EdgekitError when the records do not match the firmware's EK_INPUT_SIZE or
    EK_OUTPUT_SIZE (`output_size`, when given), ToolchainError when QEMU fails or times out.
    A firmware that faults or whose model returns an error is a result, not an exception:
    see `exit_code` and `exit_reason`. ``progress`` (progress.Stages) counts the inferences as the
    firmware writes their outputs.
    """
    elf = Path(firmware_or_elf.elf if isinstance(firmware_or_elf, Firmware) else firmware_or_elf).resolve()
    inputs = np.ascontiguousarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim != 2:
        raise EdgekitError(f"inputs must be int8 [N, EK_INPUT_SIZE], got {inputs.dtype} {list(inputs.shape)}")
    if target.is_board:
        with progress.stage("QEMU inference", len(inputs)) as advance:
            result = _run_board_image(elf, target, inputs, output_size, timeout_s)
            advance(len(result.outputs))
        return result
    with scratch_folder("qemu") as work:
        inputs.tofile(work / "input.bin")
        started = time.perf_counter()

        def inferences_done() -> int:
            written = work / "output.bin"
            return min(written.stat().st_size // output_size, len(inputs)) if output_size and written.exists() else 0

        with progress.stage("QEMU inference", len(inputs)) as advance, counting(advance, inferences_done):
            result = run_tool(
                _qemu_command(target, elf),
                cwd=work,
                timeout_s=timeout_s,
                timeout_hint=f": {elf.name} hung on {target.qemu_machine} (an endless loop, or a fault QEMU locked "
                             "up on)",
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


def _run_board_image(elf: Path, target: Target, inputs: np.ndarray, output_size: int | None,
                     timeout_s: float) -> EmulatorResult:
    """The board's own machine in QEMU, its UART on a pipe; `inputs` must be the ones in the image."""
    if target.qemu_machine is None:
        raise EdgekitError(f"QEMU does not emulate {target.name}: flash it (`edgekit flash`) and read it with "
                           "`edgekit monitor`, or compile for its CPU with --target to run in QEMU")
    serial = ["-serial", "null"] * target.board.qemu_serial_index + ["-serial", "stdio"]
    command = [find_tool("qemu-system-arm"), "-M", target.qemu_machine, "-nographic", "-monitor", "none",
               *serial, "-plugin", _plugin(elf), "-kernel", str(elf)]
    with scratch_folder("qemu") as work:
        started = time.perf_counter()
        report, console = _read_uart_until_done(command, work, timeout_s, f"{elf.name} on {target.qemu_machine}")
        wall_s = time.perf_counter() - started
        counts = parse_marker_log((work / "marks.log").read_text())
    if report.begin.get("inputs") not in (None, len(inputs)) or report.begin.get("input_bytes") != inputs.shape[1]:
        raise EdgekitError(f"the image carries {report.begin.get('inputs')} inputs of {report.begin.get('input_bytes')} "
                           f"bytes, not the {len(inputs)} of {inputs.shape[1]} given: a board image runs the inputs "
                           "it was compiled with")
    if output_size is not None and report.begin.get("output_bytes") != output_size:
        raise EdgekitError(f"output_size is {output_size}, but the firmware's EK_OUTPUT_SIZE is "
                           f"{report.begin.get('output_bytes')}")
    end = report.end or {}
    return EmulatorResult(
        outputs=report.output_array(), exit_code=report.exit_code, exit_reason=exit_reasons()[report.exit_code],
        stack_high_water_bytes=end.get("stack_high_water_bytes", 0),
        stack_reserved_bytes=end.get("stack_reserved_bytes", 0),
        marks=[inference.layers for inference in counts],
        instructions_per_inference=[inference.total for inference in counts],
        console=console, wall_s=wall_s, cycles_per_inference=report.cycles,
    )


def _read_uart_until_done(command: list[str], work: Path, timeout_s: float, what: str) -> tuple[UartReport, str]:
    """Runs QEMU, reading the UART (its stdout) line by line until the harness's end or fault line,
    then stops QEMU with SIGTERM, which still lets the instruction counter write its log."""
    report, received, pending = UartReport(), b"", b""
    process = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not report.finished:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    raise ToolchainError(f"qemu-system-arm did not finish within {timeout_s:g} s: {what} printed no "
                                         "end line (an endless loop, or a fault QEMU locked up on)")
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    raise ToolchainError(f"qemu-system-arm -M {command[2]} stopped (exit {process.wait()}) before "
                                         f"the harness finished: {process.stderr.read().decode().strip() or 'no message'}")
                received += chunk
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    report.add_line(line.decode(errors="replace"))
    finally:
        process.terminate()
        process.communicate(timeout=30)
    return report, received.decode(errors="replace")


def _plugin(elf: Path) -> str:
    return plugin_argument(build_instruction_counter(), [symbol_address(elf, name) for name in MARKER_SYMBOLS],
                           "marks.log")


def _qemu_command(target: Target, elf: Path) -> list[str]:
    """QEMU with semihosting (console to console.txt), no devices, and the instruction counter."""
    plugin = _plugin(elf)
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
