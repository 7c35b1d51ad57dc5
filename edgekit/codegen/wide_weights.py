"""Which MAC layers get int16 weights (the ``dsp_w16`` kernels), layer by layer, within the flash.

A ``dsp_w16`` kernel reads weights widened to int16 at compile time instead of sign-extending int8
weights in its loop: measured on MobileNetV2 1.0/224 (cortex-m7) about 0.2-0.3 fewer instructions per
MAC, for twice the layer's weight bytes. The instructions it saves grow with the layer's MACs, its
cost with its weights, so a layer's worth is MACs per weight value, i.e. the output pixels the
weights are applied to (1 for a fully connected layer on one row, 12,544 for MobileNetV2's first
1x1 convolution). Layers are widened best first while every constant still fits the flash: the
internal flash left after the code reserve, plus the target's external flash for weights if it has
one (``codegen.program`` places the largest arrays there). A network whose widened weights all fit
gets them everywhere, as before; one that does not gets them where they pay most, instead of nowhere.
"""

import numpy as np

from edgekit.codegen.kernels.mac_dsp import wide_row

#: flash kept free for code, runtime and small constants when deciding what goes to external flash
CODE_RESERVE_BYTES = 160 * 1024

MAC_OPS = ("conv2d", "fully_connected")


def internal_budget(target, flash_reserve_bytes: int = 0) -> int:
    """Bytes of constants the internal flash holds: its length less the code reserve and
    ``flash_reserve_bytes`` (a board image's test inputs)."""
    return target.flash.length - CODE_RESERVE_BYTES - flash_reserve_bytes


def constant_budget(target, flash_reserve_bytes: int = 0) -> int:
    """Bytes of constants the target's flash holds: :func:`internal_budget` plus any external flash
    for weights."""
    external = target.external_weights
    return internal_budget(target, flash_reserve_bytes) + (external.length if external is not None else 0)


def widened_extra_bytes(weight: np.ndarray) -> int:
    """What int16 weights add over int8 ones: rows rounded up to a multiple of 4 values, 2 bytes each
    (``mac_dsp.widen_weights``)."""
    channels = weight.shape[0]
    depth = weight.size // channels
    return 2 * channels * wide_row(depth) - weight.nbytes


def wide_weight_layers(graph, target, flash_reserve_bytes: int = 0) -> frozenset[str]:
    """Names of the conv2d and fully_connected nodes whose weights go to flash as int16: the most
    output pixels per weight first, each one whose int16 weights still let every constant fit
    ``constant_budget`` (see the module doc)."""
    total = sum(t.data.nbytes for t in graph.tensors.values() if t.data is not None)
    budget = constant_budget(target, flash_reserve_bytes)
    macs = [node for node in graph.nodes if node.op in MAC_OPS]
    order = sorted(macs, key=lambda node: -int(np.prod(graph.tensors[node.output].shape[:-1])))
    wide = set()
    for node in order:
        extra = widened_extra_bytes(graph.tensors[node.inputs[1]].data)
        if total + extra <= budget:
            wide.add(node.name)
            total += extra
    return frozenset(wide)

