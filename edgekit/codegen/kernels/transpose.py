"""transpose int8 kernel: output axis ``a`` is input axis ``perm[a]`` (e.g. NCHW -> NHWC is (0, 2, 3, 1)).

``int32_t NAME(const int8_t* input, int8_t* output)``. Output elements are written in order
(innermost axis contiguous); the reads are strided.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class TransposeSpec:
    """Static shape of one transpose: the input shape and the permutation."""

    input_shape: tuple[int, ...]
    perm: tuple[int, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape[p] for p in self.perm)


@lru_cache(maxsize=None)
def transpose_kernel(spec: TransposeSpec) -> KernelSource:
    """The C kernel ``ek_transpose_s8_<hash>`` for ``spec``."""
    if sorted(spec.perm) != list(range(len(spec.input_shape))):
        raise ValueError(f"{spec.perm} is not a permutation of the axes of a {len(spec.input_shape)}-D input")
    x = te.placeholder(spec.input_shape, "int8", name="input")

    def element(*index):
        source = [None] * len(index)
        for out_axis, in_axis in enumerate(spec.perm):
            source[in_axis] = index[out_axis]
        return x[tuple(source)]

    output = te.compute(spec.output_shape, element, name=OUTPUT_STAGE)
    return build_kernel("transpose", spec, [x, output], lambda sch: None, ("input",))
