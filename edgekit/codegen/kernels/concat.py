"""concat int8 kernel: the inputs side by side along one axis, bytes unchanged.

``int32_t NAME(const int8_t* input0, const int8_t* input1, ..., int8_t* output)``. Output elements are
written in order; each reads the input whose slice of the axis holds it.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class ConcatSpec:
    """Static shapes of one concat: every input's shape and the (non-negative) axis."""

    input_shapes: tuple[tuple[int, ...], ...]
    axis: int

    @property
    def output_shape(self) -> tuple[int, ...]:
        shape = list(self.input_shapes[0])
        shape[self.axis] = sum(s[self.axis] for s in self.input_shapes)
        return tuple(shape)


@lru_cache(maxsize=None)
def concat_kernel(spec: ConcatSpec) -> KernelSource:
    """The C kernel ``ek_concat_s8_<hash>`` for ``spec``."""
    inputs = [te.placeholder(shape, "int8", name=f"input{k}") for k, shape in enumerate(spec.input_shapes)]
    starts = [sum(s[spec.axis] for s in spec.input_shapes[:k]) for k in range(len(inputs))]

    def element(*index):
        def read(k):
            return inputs[k][tuple(i - starts[k] if axis == spec.axis else i for axis, i in enumerate(index))]

        value = read(len(inputs) - 1)
        for k in reversed(range(len(inputs) - 1)):  # input k holds the axis indices below input k + 1's start
            value = tirx.if_then_else(index[spec.axis] < starts[k + 1], read(k), value)
        return value

    output = te.compute(spec.output_shape, element, name=OUTPUT_STAGE)
    return build_kernel("concat", spec, [*inputs, output], lambda sch: None, tuple(x.name for x in inputs))
