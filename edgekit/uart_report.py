"""The board harness's UART lines (firmware/board/board_main.c) read back into numbers.

One parser for both readers: `edgekit run` on an emulated board (QEMU's serial port) and
`edgekit monitor` on a real one (a serial port through pyserial). Lines that do not start with
"ek " (boot noise, a terminal's echo) are ignored; a line whose CRC does not match its data is an
error, since a dropped byte must not pass as a wrong output.
"""

import zlib
from dataclasses import dataclass, field

import numpy as np

from edgekit.errors import EdgekitError


@dataclass
class UartReport:
    """What the harness printed, so far."""

    begin: dict[str, int] = field(default_factory=dict)  # clock_hz, inputs, input_bytes, output_bytes
    outputs: list[bytes] = field(default_factory=list)  # per inference, in order
    statuses: list[int] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)  # DWT cycles per inference (0 in QEMU)
    end: dict[str, int] | None = None  # inferences, failed, stack_high_water_bytes, stack_reserved_bytes, exit
    fault: dict[str, str] | None = None  # name, status, pc

    @property
    def finished(self) -> bool:
        """The harness is done: it printed its end line or a fault."""
        return self.end is not None or self.fault is not None

    @property
    def exit_code(self) -> int:
        if self.fault is not None:
            return int(self.fault["status"])
        return self.end["exit"] if self.end is not None else -1

    def output_array(self) -> np.ndarray:
        """int8 [inferences, output bytes]."""
        size = self.begin.get("output_bytes", 0)
        return np.frombuffer(b"".join(self.outputs), dtype=np.int8).reshape(-1, size) if size else \
            np.zeros((0, 0), dtype=np.int8)

    def add_line(self, line: str) -> None:
        """Read one line of UART text into the report."""
        words = line.strip().split()
        if len(words) < 2 or words[0] != "ek":
            return
        fields = dict(word.split("=", 1) for word in words[2:] if "=" in word)
        kind = words[1]
        if kind == "begin":
            self.begin = {key: int(value) for key, value in fields.items()}
        elif kind == "output":
            self._add_output(fields)
        elif kind == "end":
            self.end = {key: int(value) for key, value in fields.items()}
        elif kind == "fault":
            self.fault = fields

    def _add_output(self, fields: dict[str, str]) -> None:
        try:
            data = bytes.fromhex(fields["data"])
            crc = int(fields["crc32"], 16)
            index = int(fields["index"])
        except (KeyError, ValueError) as error:
            raise EdgekitError(f"garbled output line from the board ({error}): check the baud rate "
                               f"({self.begin or 'no begin line seen'})") from error
        if zlib.crc32(data) != crc or len(data) != self.begin.get("output_bytes", len(data)):
            raise EdgekitError(f"output {index} from the board fails its CRC or length check: the serial line "
                               "dropped bytes; try again or lower the baud rate")
        if index != len(self.outputs):
            raise EdgekitError(f"the board printed output {index}, expected {len(self.outputs)}: lines were lost")
        self.outputs.append(data)
        self.statuses.append(int(fields["status"]))
        self.cycles.append(int(fields["cycles"]) & 0xFFFFFFFF)
