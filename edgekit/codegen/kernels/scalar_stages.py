"""Intermediate scalars of a long fixed-point computation as TE stages, one named local each in the C.

A value read several times is normally ``Let``-bound (:func:`edgekit.codegen.kernels.fixed_point.let`),
but TVM expands every ``Let`` at each use while it bounds buffer accesses, which is exponential in
the depth of a chain (the gemmlowp exp and reciprocal nest a dozen doubling high multiplies). A stage
is opaque to that analysis: its value is computed by its own block and read back as a buffer load.

:class:`ScalarStages` builds such stages for one loop nest of shape ``shape``: expressions are
written in its index variables (``stages.index``), :meth:`ScalarStages.bind` turns a value into a
stage and returns its load at the same index, and :meth:`ScalarStages.compute_at` moves every stage
under the consumer's innermost loop, so each buffer shrinks to one element (a scalar in the C; the
lowering rejects anything larger on the stack).
"""

from tvm import te, tirx
from tvm.tirx import _ffi_api


def substitute(expr, variables, values):
    """``expr`` with each of ``variables`` replaced by the matching expression of ``values``.

    (TVM 0.27 exposes no ``tir.stmt_functor.substitute`` to Python; a ``LambdaExpr`` applied to the
    values is the same substitution.) Any ``Let`` in ``expr`` must end up in one place only.
    """
    return _ffi_api.LambdaExprApply(_ffi_api.LambdaExpr(list(variables), tirx.convert(expr)), list(values))


class ScalarStages:
    """Scalar stages over one index space; stage names are ``<prefix>_<name>`` and unique per kernel."""

    def __init__(self, prefix: str, shape: tuple[int, ...]):
        self.prefix = prefix
        self.shape = tuple(shape)
        self.index = tuple(te.var(f"{prefix}_i{axis}", "int32") for axis in range(len(shape)))
        self.names: list[str] = []

    def bind(self, name: str, value):
        """A stage computing ``value`` (an expression in :attr:`index`), read back at :attr:`index`."""
        value = tirx.convert(value)
        stage_name = f"{self.prefix}_{name}"
        if stage_name in self.names:
            raise ValueError(f"stage {stage_name} is bound twice; give each intermediate its own name")
        stage = te.compute(self.shape, lambda *index: substitute(value, self.index, index), name=stage_name)
        self.names.append(stage_name)
        return stage[self.index]

    def at(self, expr, index):
        """``expr`` (written in :attr:`index`) at another index, e.g. a consumer's loop variables."""
        return substitute(expr, self.index, index)

    def compute_at(self, sch, loop) -> None:
        """Compute every stage under ``loop`` of their consumer (latest first: consumers must be there).

        Stages that nothing reads were left out of the function by ``te.create_prim_func``; they are skipped.
        """
        present = {sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock("root"))}
        for name in reversed(self.names):
            if name in present:
                sch.compute_at(sch.get_sblock(name), loop)
