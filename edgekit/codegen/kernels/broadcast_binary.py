"""Binary elementwise int8 kernels with NumPy broadcasting (mul, sub, squared_difference, maximum,
minimum, prelu): one loop nest over the output, each operand read at the output index with its
broadcast axes pinned to 0.

``int32_t NAME(const int8_t* a, const int8_t* b, int8_t* output, int32_t <scalar>...)``. The op's
definition gives the per-element arithmetic (``element(a, b, scalars)`` on int32 TE expressions,
returning the int8 result) and the names of its integer parameters, which become the C scalars in
that order; this module only handles shapes. ``family`` names the kernel (``ek_<family>_s8_<hash>``)
and tells kernels of different ops apart. Each output element is written after its operands are
read, so ``output`` may alias an operand of the output's shape.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class BroadcastBinarySpec:
    """Static shapes of one binary op: both operands right-aligned to the output's rank."""

    family: str
    output_shape: tuple[int, ...]
    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    scalars: tuple[str, ...]

    @classmethod
    def of(cls, family: str, output_shape, a_shape, b_shape, scalars) -> "BroadcastBinarySpec":
        rank = len(output_shape)

        def aligned(shape):
            return (1,) * (rank - len(shape)) + tuple(int(d) for d in shape)

        return cls(family, tuple(int(d) for d in output_shape), aligned(a_shape), aligned(b_shape), tuple(scalars))


def _read(tensor, shape, index):
    return tensor[tuple(0 if d == 1 else i for d, i in zip(shape, index))]


@lru_cache(maxsize=None)
def broadcast_binary_kernel(spec: BroadcastBinarySpec, element) -> KernelSource:
    """The C kernel ``ek_<family>_s8_<hash>``; ``element(a, b, scalars)`` is the op's arithmetic."""
    s = {name: te.var(name, "int32") for name in spec.scalars}
    a = te.placeholder(spec.a_shape, "int8", name="a")
    b = te.placeholder(spec.b_shape, "int8", name="b")

    def compute(*index):
        return element(_read(a, spec.a_shape, index).astype("int32"), _read(b, spec.b_shape, index).astype("int32"), s)

    output = te.compute(spec.output_shape, compute, name=OUTPUT_STAGE)
    args = [a, b, output, *(s[name] for name in spec.scalars)]
    return build_kernel(spec.family, spec, args, lambda sch: None, ("a", "b"))
