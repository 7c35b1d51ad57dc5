"""Reading a linked ELF with binutils: sections and symbol addresses (no pip packages)."""

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ToolchainError
from edgekit.toolchain import first_error_line, run_tool


@dataclass(frozen=True)
class Section:
    name: str
    size: int
    address: int
    allocated: bool  # occupies target memory (flag A); debug information does not


def read_sections(elf: Path) -> list[Section]:
    """Every section of `elf` with its size, address and whether it is allocated (`readelf -S`)."""
    result = run_tool(["arm-none-eabi-readelf", "-S", "-W", str(elf)])
    if result.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-readelf failed on {elf}: {first_error_line(result.stderr)}")
    sections = []
    for line in result.stdout.splitlines():
        if "]" not in line or not line.strip().startswith("["):
            continue
        # [Nr] Name Type Addr Off Size ES Flg Lk Inf Al; Flg is empty for plain debug sections.
        fields = line.split("]", 1)[1].split()
        if len(fields) < 9 or fields[1] == "NULL" or fields[0] == "Name":
            continue
        flags = fields[6] if len(fields) == 10 else ""
        sections.append(Section(fields[0], int(fields[4], 16), int(fields[2], 16), "A" in flags))
    return sections


def symbol_address(elf: Path, name: str) -> int:
    """The address of symbol `name`, with the Thumb bit cleared (it is where the code starts)."""
    result = run_tool(["arm-none-eabi-nm", "--defined-only", str(elf)])
    if result.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-nm failed on {elf}: {first_error_line(result.stderr)}")
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16) & ~1
    raise ToolchainError(f"{elf} has no symbol {name!r}: was it linked with edgekit's firmware runtime?")
