"""The product of the kernel generator (name, C code, prototype) and the one way to make it.

A kernel's name is its op family plus a short hash of its static spec (``ek_conv2d_s8_3f9a1c2b``),
so two layers with equal specs share one C function: the emitted program deduplicates by name.
"""

import hashlib
from dataclasses import dataclass

from tvm import s_tir, te

from edgekit.codegen.tir_to_c import lower_to_c


@dataclass(frozen=True)
class KernelSource:
    """One generated C kernel: a translation unit defining ``prototype`` (which includes the compat header)."""

    name: str
    c_code: str
    prototype: str


def kernel_name(family: str, spec) -> str:
    """``ek_<family>_s8_<hash of the spec>``; the spec's repr lists every static parameter."""
    digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:8]
    return f"ek_{family}_s8_{digest}"


def build_kernel(family: str, spec, args: list, schedule, const_params) -> KernelSource:
    """Create the PrimFunc of ``args`` (TE tensors and vars, in C parameter order), schedule, lower to C.

    ``schedule`` takes an ``s_tir.Schedule`` and rewrites it in place.
    """
    name = kernel_name(family, spec)
    sch = s_tir.Schedule(te.create_prim_func(args))
    schedule(sch)
    prototype, c_code = lower_to_c(sch.mod["main"], name, const_params)
    return KernelSource(name, c_code, prototype)
