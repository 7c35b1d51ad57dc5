"""arg_max / arg_min int8 kernel: per output, the first index along the reduced axis whose value is
the largest (smallest) one, as int32.

``int32_t NAME(const int8_t* input, int32_t* output)``; the spec is the mean kernel's with the one
axis, and so is the output layout (the kept axes in order). Two reductions: the extreme value, then
the smallest index holding it (so ties give the first index, as TFLite Micro's strict comparison).
"""

from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.codegen.kernels.mean import MeanSpec


@lru_cache(maxsize=None)
def arg_min_max_kernel(op: str, spec: MeanSpec) -> KernelSource:
    """The C kernel ``ek_<op>_s8_<hash>`` for ``spec``; ``op`` is ``arg_max`` or ``arg_min``."""
    (axis,) = spec.axes
    x = te.placeholder(spec.input_shape, "int8", name="input")
    size = spec.input_shape[axis]
    extreme = te.max if op == "arg_max" else te.min

    def at(kept, k):
        kept = kept[:len(spec.input_shape) - 1]  # a 1-D input has one output and no kept axis
        return x[(*kept[:axis], k, *kept[axis:])]

    r = te.reduce_axis((0, size), name="r")
    best = te.compute(spec.output_shape, lambda *kept: extreme(at(kept, r), axis=r), name="best")
    k = te.reduce_axis((0, size), name="k")
    output = te.compute(spec.output_shape, lambda *kept: te.min(
        tirx.Select(at(kept, k) == best[kept], k, tirx.const(size, "int32")), axis=k), name=OUTPUT_STAGE)

    def schedule(sch):
        """The extreme value is a scalar computed right before the index search that reads it."""
        kept_loops = sch.get_loops(sch.get_sblock(OUTPUT_STAGE))[:len(spec.output_shape)]
        best_block = sch.get_sblock("best")
        sch.compute_at(best_block, kept_loops[-1])
        sch.decompose_reduction(best_block, sch.get_loops(best_block)[len(spec.output_shape)])

    return build_kernel(op, spec, [x, output], schedule, ("input",))
