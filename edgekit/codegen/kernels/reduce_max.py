"""reduce_max and reduce_min int8 kernel: each output is the largest (smallest) input over the reduced
axes (raw int8 values: input and output share one quantization).

``int32_t NAME(const int8_t* input, int8_t* output)``; the spec is the mean kernel's (input shape
and reduced axes), and so is the output layout (the kept axes in order).
"""

from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.codegen.kernels.mean import MeanSpec


@lru_cache(maxsize=None)
def reduce_max_kernel(spec: MeanSpec, op: str = "reduce_max") -> KernelSource:
    """The C kernel ``ek_<op>_s8_<hash>`` for ``spec``; ``op`` is ``reduce_max`` or ``reduce_min``."""
    extreme = te.max if op == "reduce_max" else te.min
    x = te.placeholder(spec.input_shape, "int8", name="input")
    reduced = {a: te.reduce_axis((0, spec.input_shape[a]), name=f"r{a}") for a in spec.axes}
    kept_axes = [a for a in range(len(spec.input_shape)) if a not in spec.axes]

    def largest(*kept):
        kept_index = dict(zip(kept_axes, kept))
        return extreme(x[tuple(kept_index[a] if a in kept_index else reduced[a] for a in range(len(spec.input_shape)))],
                      axis=list(reduced.values()))

    output = te.compute(spec.output_shape, largest, name=OUTPUT_STAGE)
    return build_kernel(op, spec, [x, output], lambda sch: None, ("input",))
