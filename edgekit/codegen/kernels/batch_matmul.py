"""batch_matmul int8 kernel (TFLite Micro's BATCH_MATMUL): for every output element, the int32 sum of
(lhs + lhs_offset) * (rhs + rhs_offset) over the depth, then one rescale, the output offset and the
int8 clamp. Batch axes broadcast (an axis of 1 is read at 0); adjoints swap the last two axes' roles.

``int32_t NAME(const int8_t* lhs, const int8_t* rhs, int8_t* output, int32_t lhs_offset,
int32_t rhs_offset, int32_t output_offset, int32_t output_mult, int32_t output_shift)``.
"""

from dataclasses import dataclass, fields
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.fixed_point import requantize
from edgekit.codegen.kernels.kernel_source import ACC_STAGE, OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.ops.batch_matmul import BatchMatmulInt8Params

SCALARS = tuple(field.name for field in fields(BatchMatmulInt8Params))


@dataclass(frozen=True)
class BatchMatmulSpec:
    """Static shapes of one batch_matmul: both operands aligned to the output's rank, and the adjoints."""

    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    adj_x: bool
    adj_y: bool

    @classmethod
    def of(cls, lhs_shape, rhs_shape, output_shape, adj_x: bool, adj_y: bool) -> "BatchMatmulSpec":
        rank = len(output_shape)

        def aligned(shape):
            return (1,) * (rank - len(shape)) + tuple(int(d) for d in shape)

        return cls(aligned(lhs_shape), aligned(rhs_shape), tuple(int(d) for d in output_shape), adj_x, adj_y)

    @property
    def depth(self) -> int:
        return self.lhs_shape[-2] if self.adj_x else self.lhs_shape[-1]


@lru_cache(maxsize=None)
def batch_matmul_kernel(spec: BatchMatmulSpec) -> KernelSource:
    """The C kernel ``ek_batch_matmul_s8_<hash>`` for ``spec``."""
    s = {name: te.var(name, "int32") for name in SCALARS}
    lhs = te.placeholder(spec.lhs_shape, "int8", name="lhs")
    rhs = te.placeholder(spec.rhs_shape, "int8", name="rhs")
    k = te.reduce_axis((0, spec.depth), name="k")

    def batch(shape, index):
        return tuple(0 if d == 1 else i for d, i in zip(shape[:-2], index[:-2]))

    def element(*index):
        i, j = index[-2:]
        a = lhs[batch(spec.lhs_shape, index) + ((k, i) if spec.adj_x else (i, k))]
        b = rhs[batch(spec.rhs_shape, index) + ((j, k) if spec.adj_y else (k, j))]
        return te.sum((a.astype("int32") + s["lhs_offset"]) * (b.astype("int32") + s["rhs_offset"]), axis=k)

    acc = te.compute(spec.output_shape, element, name=ACC_STAGE)
    output = te.compute(spec.output_shape, lambda *index: requantize(
        acc[index], s["output_mult"], s["output_shift"], s["output_offset"], -128, 127), name=OUTPUT_STAGE)

    def schedule(sch):
        acc_block = sch.get_sblock(ACC_STAGE)
        loops = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, loops[-1])
        sch.reverse_compute_at(sch.get_sblock(OUTPUT_STAGE), loops[-2])

    args = [lhs, rhs, output, *(s[name] for name in SCALARS)]
    return build_kernel("batch_matmul", spec, args, schedule, ("lhs", "rhs"))
