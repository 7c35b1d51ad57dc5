"""`edgekit monitor`: read a flashed board's report from its serial port and check it.

The board harness prints its lines once after reset (see firmware/board/board_main.c); the monitor
opens the port (pyserial), waits for them (press the board's reset button, or flash it, while it
waits), and compares every output with the integer reference interpreter on the inputs the image
carries, which the build folder keeps.
"""

import time
from dataclasses import dataclass

import numpy as np

from edgekit.errors import EdgekitError, FirmwareFaultError, ToolchainError
from edgekit.uart_report import UartReport

DEFAULT_TIMEOUT_S = 120.0


@dataclass
class MonitorResult:
    """What the board reported, checked against the reference."""

    board: str
    bit_exact: bool
    inputs: int
    mismatches: int
    clock_hz: int
    cycles_per_inference: list[int]  # DWT cycles
    milliseconds_per_inference: list[float]  # cycles at clock_hz
    stack_bytes: int
    exit_code: int
    lines: list[str]

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lines"}


def read_report(port: str, baud: int, timeout_s: float, on_open=None) -> tuple[UartReport, list[str]]:
    """Lines from the serial port until the harness's end or fault line; `on_open()` is called once the
    port is open (what arrived before is flushed, so that is when the board may be reset)."""
    import serial

    report, lines = UartReport(), []
    deadline = time.monotonic() + timeout_s
    try:
        with serial.Serial(port, baud, timeout=0.5) as connection:
            if on_open:
                on_open()
            while not report.finished:
                if time.monotonic() > deadline:
                    raise ToolchainError(f"no complete report on {port} within {timeout_s:g} s: reset the board "
                                         f"while `edgekit monitor` waits; check the port and the baud rate ({baud})")
                raw = connection.readline()
                if raw:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    lines.append(line)
                    report.add_line(line)
    except serial.SerialException as error:
        raise ToolchainError(f"cannot read serial port {port}: {error}; is the board connected "
                             "(ls /dev/ttyACM* /dev/ttyUSB*)?") from error
    return report, lines


def monitor_build(build_dir, port: str, baud: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                  on_open=None) -> MonitorResult:
    """Reads the board's report and compares its outputs with the reference interpreter."""
    from edgekit.build_folder import BuildFolder
    from edgekit.ir.interpreter import run_graph

    folder = BuildFolder(build_dir)
    manifest = folder.manifest()
    target = folder.target()
    if not target.is_board:
        raise EdgekitError(f"{folder} is an emulated {target.name} build: use `edgekit run`, or compile with "
                           f"--board {target.board.name} to get an image that prints over the UART")
    report, lines = read_report(port, baud or target.board.uart.baud, timeout_s, on_open)
    if report.fault is not None:
        raise FirmwareFaultError(f"{target.name} faulted: {report.fault.get('name')} at pc 0x{report.fault.get('pc')}")
    graph = folder.load_graph()
    inputs, _ = folder.test_inputs(manifest["embedded_test_inputs"])
    outputs = report.output_array()
    if len(outputs) != len(inputs):
        raise EdgekitError(f"the board ran {len(outputs)} inputs, the build embeds {len(inputs)}: "
                           "is the board running this build? Flash it again")
    mismatches = sum(int(not np.array_equal(run_graph(graph, [x], mode="int8")[graph.outputs[0]].ravel(), outputs[i]))
                     for i, x in enumerate(inputs))
    clock = report.begin.get("clock_hz", 0)
    return MonitorResult(
        board=target.name, bit_exact=mismatches == 0, inputs=len(inputs), mismatches=mismatches, clock_hz=clock,
        cycles_per_inference=report.cycles,
        milliseconds_per_inference=[cycles / clock * 1000 if clock else 0.0 for cycles in report.cycles],
        stack_bytes=report.end["stack_high_water_bytes"], exit_code=report.exit_code, lines=lines,
    )
