"""edgekit: turn a trained CNN into verified int8 firmware for Cortex-M microcontrollers.

The Python API mirrors the command line: ``edgekit.compile(model, target=... | board=...)``,
``edgekit.run(build)``, ``edgekit.report(build)``, ``edgekit.flash(build)``, ``edgekit.monitor(build,
port)``, and ``inspect``, ``quantize``, ``infer``; each returns a typed result (see edgekit/api.py).
They are loaded on first use, so ``import edgekit`` stays cheap.
"""

import sys
import types

__version__ = "0.1.0"

_API = ("inspect", "quantize", "infer", "compile", "run", "report", "flash", "monitor")
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        from edgekit import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The edgekit package, whose API functions keep their names: importing a submodule of the same name
    (edgekit/report.py, flash.py, monitor.py) would otherwise set ``edgekit.report`` to that module.
    The submodules stay importable by their full names (``from edgekit.report import ...``)."""

    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
