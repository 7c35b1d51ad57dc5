"""strided_slice int8 kernel: ``output[i0, i1, ...] = input[start0 + step0 * i0, start1 + step1 * i1, ...]``.

``int32_t NAME(const int8_t* input, int8_t* output)``. Squeezed axes of the op are length-1 axes
here: they change the output's shape, not its bytes.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class StridedSliceSpec:
    """Static shape of one slice: the input shape and (start, stop, step) of every axis."""

    input_shape: tuple[int, ...]
    ranges: tuple[tuple[int, int, int], ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(len(range(*r)) for r in self.ranges)


@lru_cache(maxsize=None)
def strided_slice_kernel(spec: StridedSliceSpec) -> KernelSource:
    """The C kernel ``ek_strided_slice_s8_<hash>`` for ``spec``."""
    x = te.placeholder(spec.input_shape, "int8", name="input")
    output = te.compute(spec.output_shape, lambda *index: x[tuple(
        start + step * i for (start, _, step), i in zip(spec.ranges, index))], name=OUTPUT_STAGE)
    return build_kernel("strided_slice", spec, [x, output], lambda sch: None, ("input",))
