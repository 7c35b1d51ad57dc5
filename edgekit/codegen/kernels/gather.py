"""gather int8 kernel: ``output[pre, j, post] = input[pre, indices[j], post]`` for the gathered axis
(``j`` runs over the indices' shape).

``int32_t NAME(const int8_t* input, const int32_t* indices, int8_t* output)``; the indices are a
constant array in flash.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class GatherSpec:
    """Static shape of one gather: the input shape, the gathered axis and the indices' shape."""

    input_shape: tuple[int, ...]
    axis: int
    indices_shape: tuple[int, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.input_shape[:self.axis] + self.indices_shape + self.input_shape[self.axis + 1:]


@lru_cache(maxsize=None)
def gather_kernel(spec: GatherSpec) -> KernelSource:
    """The C kernel ``ek_gather_s8_<hash>`` for ``spec``."""
    x = te.placeholder(spec.input_shape, "int8", name="input")
    indices = te.placeholder(spec.indices_shape or (1,), "int32", name="indices")
    count = len(spec.indices_shape)

    def element(*index):
        picked = index[spec.axis:spec.axis + count]
        source = indices[picked] if count else indices[0]
        return x[index[:spec.axis] + (source,) + index[spec.axis + count:]]

    output = te.compute(spec.output_shape, element, name=OUTPUT_STAGE)
    return build_kernel("gather", spec, [x, indices, output], lambda sch: None, ("input", "indices"))
