"""Table lookup int8 kernel for unary int8 ops (logistic, tanh, hard_swish, leaky_relu, requantizing relu).

``int32_t NAME(const int8_t* input, const int8_t* table, int8_t* output)``: ``output[i] =
table[input[i] + 128]``. An int8 -> int8 function with fixed quantization parameters has only 256
possible inputs, so its op's exact int8 reference, run once on all of them at compile time
(:func:`int8_table`), gives a 256-byte table that is bit-exact by construction; the table goes to
flash with the node's other constants. Each element is read before it is written, so ``output`` may
alias ``input``.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from tvm import te

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


@dataclass(frozen=True)
class LookupTableSpec:
    """Static shape of one table lookup: the number of elements."""

    size: int


def int8_table(function) -> np.ndarray:
    """The 256 outputs of an elementwise int8 ``function`` (NumPy array -> array), in input order -128..127."""
    table = np.asarray(function(ALL_INT8))
    if table.shape != (256,) or table.dtype != np.int8:
        raise ValueError(f"an elementwise int8 function must map 256 int8 values to 256 int8 values, got "
                         f"{table.dtype} {table.shape}")
    return table


@lru_cache(maxsize=None)
def lookup_table_kernel(spec: LookupTableSpec) -> KernelSource:
    """The C kernel ``ek_lookup_table_s8_<hash>`` for ``spec``."""
    x = te.placeholder((spec.size,), "int8", name="input")
    table = te.placeholder((256,), "int8", name="table")
    output = te.compute((spec.size,), lambda i: table[x[i].astype("int32") + 128], name=OUTPUT_STAGE)
    return build_kernel("lookup_table", spec, [x, table, output], lambda sch: None, ("input", "table"))
