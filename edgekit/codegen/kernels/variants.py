"""Kernel selection: which variant (schedule) of a kernel family runs a layer on a target.

Each MAC family has one compute definition (its op's int8 reference) and several variants:
``tvm``, the portable TVM schedule (:mod:`edgekit.codegen.kernels.conv2d` ...), which runs on any
Cortex-M; ``dsp``, SXTB16/SMLAD register blocking (:mod:`edgekit.codegen.kernels.mac_dsp`) for CPUs
with the DSP extension. A variant may support only some specs (the DSP depthwise kernel needs depth
multiplier 1). The variant is part of the kernel's name, so it is part of the kernel cache key too.
"""

from edgekit.codegen.kernels import mac_dsp
from edgekit.codegen.kernels.conv2d import conv2d_kernel
from edgekit.codegen.kernels.depthwise_conv2d import depthwise_conv2d_kernel
from edgekit.codegen.kernels.fully_connected import fully_connected_kernel

PORTABLE = "tvm"
DSP = mac_dsp.VARIANT


def _always(spec) -> bool:
    return True


# family -> variant -> (kernel maker, spec check); the most specialised variant first
FAMILIES = {
    "conv2d": {DSP: (mac_dsp.conv2d_dsp_kernel, mac_dsp.conv2d_supported), PORTABLE: (conv2d_kernel, _always)},
    "depthwise_conv2d": {DSP: (mac_dsp.depthwise_conv2d_dsp_kernel, mac_dsp.depthwise_supported),
                         PORTABLE: (depthwise_conv2d_kernel, _always)},
    "fully_connected": {DSP: (mac_dsp.fully_connected_dsp_kernel, _always), PORTABLE: (fully_connected_kernel, _always)},
}


def target_variants(target) -> tuple[str, ...]:
    """The variants ``target``'s CPU can run, the most specialised first."""
    return (DSP, PORTABLE) if target.dsp else (PORTABLE,)


def candidate_variants(family: str, spec, target) -> list[str]:
    """The variants of ``family`` that run ``spec`` on ``target``, the default first."""
    available = FAMILIES[family]
    return [v for v in target_variants(target) if v in available and available[v][1](spec)]


def select_kernel(family: str, spec, target, variant: str | None = None):
    """The kernel of ``family`` for ``spec`` on ``target``: ``variant`` if given, else the default one."""
    candidates = candidate_variants(family, spec, target)
    if variant is None:
        variant = candidates[0]
    elif variant not in candidates:
        raise ValueError(f"{family} variant {variant!r} cannot run {spec} on {target.name}; "
                         f"choose one of {', '.join(candidates)}")
    return FAMILIES[family][variant][0](spec)
