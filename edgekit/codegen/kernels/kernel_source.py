"""The product of the kernel generator (name, C code, prototype) and the one way to make it.

A kernel's name is its op family, its variant (the schedule: ``tvm``, the portable TVM schedule, or
``dsp``...) and a short hash of its static spec and variant (``ek_conv2d_s8_dsp_3f9a1c2b``), so two
layers with equal specs and variants share one C function: the emitted program deduplicates by name,
and the on-disk cache is keyed by name.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tvm import s_tir, te

from edgekit.codegen.tir_to_c import lower_to_c

ACC_STAGE = "acc"
OUTPUT_STAGE = "output"


@dataclass(frozen=True)
class KernelSource:
    """One generated C kernel: a translation unit defining ``prototype`` (it includes the compat header).

    ``scratch_bytes`` is the size of the ``int8_t* scratch`` buffer the caller passes (0: none).
    ``input_offset_in_bias``: the caller passes ``bias + input_offset * sum(channel weights)`` as the
    bias (see :mod:`edgekit.codegen.kernels.mac_dsp`); ``weights_int16``: the caller passes the weights
    widened to int16 (``mac_dsp.widen_weights``); ``doubled_products``: those int16 weights and the bias
    doubled, so the accumulators come out doubled, as the narrow requantization wants them
    (``mac_dsp.channel_table``); ``filter_blocks``: the caller passes a depthwise filter in blocks of
    channels (``depthwise_mve.block_filter``). ``variant`` names the schedule.
    """

    name: str
    c_code: str
    prototype: str
    scratch_bytes: int = 0
    input_offset_in_bias: bool = False
    weights_int16: bool = False
    doubled_products: bool = False
    variant: str = "tvm"
    filter_blocks: bool = False

    @property
    def params(self) -> tuple[str, ...]:
        """The C parameter names in order: the TE tensor and variable names the kernel was defined with.
        Callers pass arguments by these names (``codegen.layer_calls.kernel_call``)."""
        inside = self.prototype[self.prototype.index("(") + 1:self.prototype.rindex(")")]
        return tuple(param.rsplit(" ", 1)[-1].lstrip("*") for param in inside.split(", ") if param)


def kernel_name(family: str, spec, variant: str = "tvm") -> str:
    """``ek_<family>_s8_<variant>_<hash of spec and variant>``; the spec's repr lists every static parameter."""
    digest = hashlib.sha256(repr((spec, variant)).encode()).hexdigest()[:8]
    return f"ek_{family}_s8_{variant}_{digest}"


def build_kernel(family: str, spec, args: list, schedule, const_params) -> KernelSource:
    """Create the PrimFunc of ``args`` (TE tensors and vars, in C parameter order), schedule, lower to C.

    ``schedule`` takes an ``s_tir.Schedule`` and rewrites it in place. The names of ``args`` become the
    C parameter names (:attr:`KernelSource.params`), by which callers pass their values.
    """
    name = kernel_name(family, spec)
    cached = _cache_path(name)
    if cached.is_file():
        return KernelSource(name, **json.loads(cached.read_text()))
    sch = s_tir.Schedule(te.create_prim_func(args))
    schedule(sch)
    lowered = lower_to_c(sch.mod["main"], name, const_params)
    kernel = KernelSource(name, lowered.c_code, lowered.prototype)
    _store(cached, {"c_code": kernel.c_code, "prototype": kernel.prototype})
    return kernel


@lru_cache(maxsize=1)
def _generator_version() -> str:
    """Hash of TVM's version and of the kernel generator's sources (kernels/, tir_to_c.py): any change there
    invalidates the cache; the program emitter around it does not."""
    import tvm

    digest = hashlib.sha256(tvm.__version__.encode())
    generator = Path(__file__).resolve().parents[1]
    for path in sorted(generator.joinpath("kernels").glob("*.py")) + [generator / "tir_to_c.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _cache_path(name: str) -> Path:
    """Generated kernels are cached on disk ($EDGEKIT_HOME/kernels): TVM lowering takes seconds each."""
    from edgekit.paths import writable_cache_dir

    return writable_cache_dir() / "kernels" / _generator_version() / f"{name}.json"


def _store(path: Path, entry: dict) -> None:
    """Write atomically, so parallel compiles (pytest -n) never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(entry))
    temporary.replace(path)
