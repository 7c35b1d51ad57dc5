"""fully_connected int8 kernel: input [K], filter [N, K] (filter offset 0), per-channel requantization.

Loop order: output feature, then input feature, the innermost loop walking both the input and one
filter row contiguously; each output is requantized right after its dot product.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.kernel_source import ACC_STAGE, KernelSource
from edgekit.codegen.kernels.mac import MacScalars, build_mac_kernel


@dataclass(frozen=True)
class FullyConnectedSpec:
    """Static shape of one fully connected layer: K inputs, N outputs."""

    in_features: int
    out_features: int


@lru_cache(maxsize=None)
def fully_connected_kernel(spec: FullyConnectedSpec) -> KernelSource:
    """The C kernel ``ek_fully_connected_s8_<hash>`` for ``spec`` (see :mod:`edgekit.codegen.kernels.mac`)."""
    scalars = MacScalars()
    x = te.placeholder((spec.in_features,), "int8", name="input")
    filt = te.placeholder((spec.out_features, spec.in_features), "int8", name="filter")
    k = te.reduce_axis((0, spec.in_features), name="k")
    acc = te.compute(
        (spec.out_features,),
        lambda n: te.sum((x[k].astype("int32") + scalars.input_offset) * filt[n, k].astype("int32"), axis=k),
        name=ACC_STAGE,
    )

    def schedule_acc(sch, acc_block):
        out_feature, in_feature = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, in_feature)
        return out_feature

    return build_mac_kernel("fully_connected", spec, x, filt, acc, scalars, schedule_acc)
