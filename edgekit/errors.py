"""Errors a user can cause, each with a one-line message that names the problem and the fix.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; anything that is not an
``EdgekitError`` is a bug in edgekit and keeps its traceback.
"""


_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


class EdgekitError(Exception):
    """A problem with the user's input or environment, not a bug in edgekit. Its message stays one
    line: control characters (a newline inside a name read from a corrupt file) are escaped."""

    exit_code = 2

    def __init__(self, message: str = "", *args):
        super().__init__(str(message).translate(_CONTROL), *args)


class ModelFileError(EdgekitError):
    """A model file is missing, unreadable or corrupt."""


class UnsupportedOpError(EdgekitError):
    """The model uses an operator (or an attribute of one) that edgekit cannot compile."""


class UnknownNameError(EdgekitError):
    """A zoo model, target or scheme name that does not exist."""


class GraphError(EdgekitError):
    """A graph breaks an IR invariant (found by ``Graph.lint``)."""


class DoesNotFitError(EdgekitError):
    """The firmware does not fit a memory region of the target; ``numbers`` says by how much (for --json)."""

    exit_code = 3

    def __init__(self, message: str, numbers: dict | None = None):
        super().__init__(message)
        self.numbers = numbers or {}


class ToolchainError(EdgekitError):
    """An external tool (compiler, emulator) is missing or failed."""

    exit_code = 4


class FirmwareFaultError(EdgekitError):
    """The firmware faulted, overflowed its stack or a kernel returned an error status."""

    exit_code = 6
