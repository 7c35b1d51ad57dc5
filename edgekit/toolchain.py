"""Finding and running the external tools (arm-none-eabi-*, qemu-system-arm, host gcc).

Every tool call goes through here so that a missing tool is one ToolchainError that says
how to install it, never a FileNotFoundError traceback.
"""

import shutil
import subprocess
from pathlib import Path

from edgekit.errors import ToolchainError

_INSTALL_HINT = "run `make setup` (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc)"


def find_tool(name: str) -> str:
    """The absolute path of `name` on PATH, or ToolchainError naming the setup step."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH: {_INSTALL_HINT}")
    return path


def run_tool(
    args: list[str], cwd: Path | None = None, timeout_s: float | None = None, timeout_hint: str = ""
) -> subprocess.CompletedProcess:
    """Runs a tool and returns the finished process (text output); the caller judges the exit status.

    A run past `timeout_s` is killed and becomes a ToolchainError ending with `timeout_hint`.
    """
    command = [find_tool(args[0]), *args[1:]]
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise ToolchainError(f"{args[0]} did not finish within {timeout_s:g} s{timeout_hint}") from error


def first_error_line(output: str) -> str:
    """The first diagnostic line (compiler "error:", linker "ld: ..." or "undefined reference"), else the first line.

    Context lines ("in function `f':") and collect2's summary are skipped for the line that names the problem.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        diagnostic = "error:" in line or "ld: " in line or "undefined reference" in line
        if diagnostic and not line.endswith(":") and not line.startswith("collect2:"):
            return line
    return lines[0] if lines else "(no output)"
