"""The op registry: one definition per op, looked up by name by every other part of edgekit.

Every module of this package is imported once, and every ``OpDef`` instance a module defines is
registered under its ``name``. A new op is therefore its file here (with its kernel file, its
importer mapping and its tests); there is no list to extend.
"""

import importlib
import pkgutil

from edgekit.errors import UnsupportedOpError
from edgekit.ops.base import OpDef


def _discover() -> dict[str, OpDef]:
    """The op definitions of this package's modules, by name; two different ones with one name are a bug."""
    found: dict[str, OpDef] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, OpDef) and found.setdefault(value.name, value) is not value:
                raise RuntimeError(f"two op definitions are named {value.name!r} (one in {module.__name__}); "
                                   "give each op its own name")
    return dict(sorted(found.items()))


OPS: dict[str, OpDef] = _discover()


def get_op(name: str, node=None) -> OpDef:
    """The definition of op ``name``; UnsupportedOpError naming the node when there is none."""
    try:
        return OPS[name]
    except KeyError:
        where = f" (node {node.name})" if node is not None else ""
        raise UnsupportedOpError(
            f"op {name!r}{where} is not supported; supported ops: {', '.join(sorted(OPS))}"
        ) from None
