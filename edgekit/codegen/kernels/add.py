"""Elementwise int8 add kernel (TFLite ADD): both inputs lifted by 2**20, rescaled, summed, rescaled.

``int32_t NAME(const int8_t* a, const int8_t* b, int8_t* output, int32_t a_offset, int32_t a_mult,
int32_t a_shift, int32_t b_offset, int32_t b_mult, int32_t b_shift, int32_t out_offset,
int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max)``. Each element is read before
it is written, so ``output`` may alias ``a`` or ``b`` (in-place add).
"""

from dataclasses import dataclass, fields
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.elementwise_arithmetic import add_element
from edgekit.codegen.kernels.kernel_source import KernelSource, build_kernel
from edgekit.ops.add import AddInt8Params

SCALARS = tuple(field.name for field in fields(AddInt8Params))  # the C scalars are the op's int8 parameters


@dataclass(frozen=True)
class AddSpec:
    """Static shape of one elementwise add: the number of elements of each operand."""

    size: int


@lru_cache(maxsize=None)
def add_kernel(spec: AddSpec) -> KernelSource:
    """The C kernel ``ek_add_s8_<hash>`` for ``spec``."""
    s = {name: te.var(name, "int32") for name in SCALARS}
    a = te.placeholder((spec.size,), "int8", name="a")
    b = te.placeholder((spec.size,), "int8", name="b")

    output = te.compute((spec.size,), lambda i: add_element(a[i].astype("int32"), b[i].astype("int32"), s),
                        name="output")
    args = [a, b, output, *(s[name] for name in SCALARS)]
    return build_kernel("add", spec, args, lambda sch: None, ("a", "b"))
