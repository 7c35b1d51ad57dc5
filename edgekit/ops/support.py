"""Description: what edgekit supports, op by op, generated from the op definitions (``edgekit ops``).

Like Vela's SUPPORTED_OPS.md, nothing here is written by hand: each row reads one ``OpDef``, its
facts and its ``constraint_*`` functions (whose docstrings are the rules), so the list cannot drift
from what the interpreter, the quantizer, the planner and the code generator do.
"""

from dataclasses import dataclass

from edgekit import ops
from edgekit.ops.base import OpDef, rule_text


@dataclass(frozen=True)
class OpSupport:
    """One op as the user sees it: where it runs and under which rules."""

    name: str
    int8: str  # "yes", or "no: why"
    firmware: bool  # the code generator emits it (a C kernel, or no code for a view)
    weights: str  # "per channel, axis N" for int8 weights, or "-"
    fuses_activation: bool
    memory_sharing: str  # the in-place or view rule, or "-"
    patches: bool
    constraints: tuple[str, ...]  # the rules, checked on every imported graph
    patch_constraints: tuple[str, ...]  # further rules on patches


def op_support(op: OpDef) -> OpSupport:
    sharing = op.buffer_share
    return OpSupport(
        name=op.name,
        int8="yes" if op.int8_unsupported is None else f"no: {op.int8_unsupported}",
        firmware=op.has_kernel,
        weights="-" if op.weight_channel_axis is None else f"per channel, axis {op.weight_channel_axis}",
        fuses_activation=op.fuses_activation,
        memory_sharing="-" if sharing is None else sharing.reason,
        patches=op.patchable,
        constraints=tuple(rule_text(constraint) for constraint in op.constraints),
        patch_constraints=tuple(rule_text(constraint) for constraint in op.patch_constraints),
    )


def supported_ops() -> list[OpSupport]:
    """Every registered op, by name."""
    return [op_support(ops.OPS[name]) for name in sorted(ops.OPS)]
