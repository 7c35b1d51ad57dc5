"""Kernel selection: which variant (schedule) of a kernel family runs a layer on a target.

Each MAC family has one compute definition (its op's int8 reference) and several variants:
``tvm``, the portable TVM schedule (:mod:`edgekit.codegen.kernels.conv2d` ...), which runs on any
Cortex-M; ``dsp`` and ``dsp_w16``, SXTB16/SMLAD register blocking with int8 or int16 weights
(:mod:`edgekit.codegen.kernels.mac_dsp`) for CPUs with the DSP extension; ``mve``, Helium dot products
(conv2d, fully_connected) and vectors across channels (depthwise, :mod:`edgekit.codegen.kernels.depthwise_mve`),
for CPUs with MVE; for depthwise also ``dsp_c4`` (3x3, stride 1 or 2, four channels at a time) beside the
one-channel ``dsp``. A variant may support only some specs (the DSP depthwise kernels need depth
multiplier 1), and be the default for fewer (``DEFAULT_WHERE``). The variant is part of the kernel's
name, so it is part of the kernel cache key too.
"""

from dataclasses import dataclass, field, replace
from functools import partial

from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels.conv2d import conv2d_kernel
from edgekit.codegen.kernels.depthwise_conv2d import depthwise_conv2d_kernel
from edgekit.codegen.kernels.depthwise_mve import depthwise_conv2d_mve_kernel
from edgekit.codegen.kernels.fully_connected import fully_connected_kernel

PORTABLE = "tvm"
DSP = mac_dsp.VARIANT
DSP_W16 = mac_dsp.VARIANT_W16
MVE = mac_dsp.VARIANT_MVE
DSP_C4 = mac_dsp.VARIANT_C4
#: variants a scratch-lean schedule leaves out: their scratch is larger than the lean kernels'
NOT_LEAN = (DSP_C4,)


def _always(spec) -> bool:
    return True


# family -> variant -> (kernel maker, spec check); the most specialised variant first
FAMILIES = {
    "conv2d": {MVE: (partial(mac_dsp.conv2d_dsp_kernel, mve=True), _always),
               DSP_W16: (partial(mac_dsp.conv2d_dsp_kernel, weights16=True), _always),
               DSP: (mac_dsp.conv2d_dsp_kernel, _always), PORTABLE: (conv2d_kernel, _always)},
    "depthwise_conv2d": {MVE: (depthwise_conv2d_mve_kernel, mac_dsp.depthwise_supported),
                         DSP_C4: (mac_dsp.depthwise_conv2d_c4_kernel, mac_dsp.depthwise_c4_supported),
                         DSP: (mac_dsp.depthwise_conv2d_dsp_kernel, mac_dsp.depthwise_supported),
                         PORTABLE: (depthwise_conv2d_kernel, _always)},
    "fully_connected": {MVE: (partial(mac_dsp.fully_connected_dsp_kernel, mve=True), _always),
                        DSP_W16: (partial(mac_dsp.fully_connected_dsp_kernel, weights16=True), _always),
                        DSP: (mac_dsp.fully_connected_dsp_kernel, _always),
                        PORTABLE: (fully_connected_kernel, _always)},
}


#: variant -> whether it is the default for a spec it runs; where not, it comes after the others (``--tune``
#: still measures it)
DEFAULT_WHERE = {DSP_C4: mac_dsp.depthwise_c4_default}


def target_variants(target) -> tuple[str, ...]:
    """The variants ``target``'s CPU can run, the most specialised first."""
    dsp = (DSP_W16, DSP_C4, DSP, PORTABLE) if target.dsp else (PORTABLE,)
    return (MVE,) + dsp if target.mve else dsp


def candidate_variants(family: str, spec, target, wide_weights: bool = True) -> list[str]:
    """The variants of ``family`` that run ``spec`` on ``target``, the default first; ``wide_weights``
    False leaves out the int16-weight variants (they would not fit the flash)."""
    available = FAMILIES[family]
    runs = [v for v in target_variants(target) if v in available and available[v][1](spec)
            and (wide_weights or v != DSP_W16)]
    return sorted(runs, key=lambda v: not DEFAULT_WHERE.get(v, _always)(spec))


def make_kernel(family: str, spec, variant: str, narrow: bool = False, clamp: str = "any", **options):
    """The kernel of ``family`` for ``spec`` in ``variant``; ``narrow``: the layer passed
    ``mac_dsp.narrow_accumulators`` (the DSP kernels then requantize faster); ``clamp``: its
    ``mac_dsp.clamp_kind`` (the DSP kernels compile it in); ``options``: keywords of the variant's
    kernel maker (``lean``, see ``KernelChoice``), ignored by ``tvm``."""
    maker = FAMILIES[family][variant][0]
    return maker(spec) if variant == PORTABLE else maker(spec, narrow=narrow, clamp=clamp, **options)


@dataclass(frozen=True)
class KernelChoice:
    """How the code generator picks each MAC layer's variant.

    ``target``: its CPU features decide what may run. ``wide_weights``: whether int16 weights fit
    the flash, for every layer (a bool) or for the layers it names (the program decides from the
    model's weight bytes, ``codegen.wide_weights``). ``tuned``: variants measured
    best by ``--tune``, keyed by :func:`tuning_key`; other layers get the first candidate.
    """

    target: object
    wide_weights: bool | frozenset = True
    tuned: dict = field(default_factory=dict)
    prefer: str | None = None  # the variant every layer that can run it gets (tuning measures each)
    #: scratch-lean DSP kernels (a patched schedule that minimises SRAM, ``PatchSchedule.lean_kernels``):
    #: conv2d and fully_connected widen their int8 inputs in the loop instead of into scratch, depthwise
    #: keeps a row window instead of a whole plane (``mac_dsp``); ``ek_scratch`` is outside the arena
    #: and counts at every step, so its largest user matters
    lean: bool = False

    def variants(self, family: str, spec, node: str | None = None) -> list[str]:
        """The variants this choice may give ``spec`` (of the layer named ``node``), the default first."""
        wide = self.wide_weights if isinstance(self.wide_weights, bool) else node in self.wide_weights
        return [v for v in candidate_variants(family, spec, self.target, wide) if not (self.lean and v in NOT_LEAN)]

    def kernel(self, family: str, spec, narrow: bool = False, clamp: str = "any", node: str | None = None):
        """The kernel the code generator gives the layer named ``node``, of ``family`` and ``spec``
        (``narrow``, ``clamp``: see :func:`make_kernel`)."""
        candidates = self.variants(family, spec, node)
        wanted = self.prefer or self.tuned.get(tuning_key(family, spec, narrow))
        return make_kernel(family, spec, wanted if wanted in candidates else candidates[0], narrow, clamp,
                           **({"lean": True} if self.lean else {}))

    def portable(self) -> "KernelChoice":
        """This choice restricted to the portable kernels."""
        return replace(self, prefer=PORTABLE)


def tuning_key(family: str, spec, narrow: bool) -> str:
    """What a tuning result is keyed by (with the target): the family, the static spec and whether the
    layer requantizes narrow (``make_kernel``)."""
    return f"{family} {spec!r}{' narrow' if narrow else ''}"


def select_kernel(family: str, spec, target, variant: str | None = None):
    """The kernel of ``family`` for ``spec`` on ``target``: ``variant`` if given, else the default one."""
    candidates = candidate_variants(family, spec, target)
    if variant is None:
        variant = candidates[0]
    elif variant not in candidates:
        raise ValueError(f"{family} variant {variant!r} cannot run {spec} on {target.name}; "
                         f"choose one of {', '.join(candidates)}")
    return make_kernel(family, spec, variant)
