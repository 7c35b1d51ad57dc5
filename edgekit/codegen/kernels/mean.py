"""mean (and sum) int8 kernel over any axes (TFLite's reference_ops::QuantizedMeanOrSum; global average
pooling is the mean over H and W).

``int32_t NAME(const int8_t* input, int8_t* output, int32_t input_zero_point, int32_t output_zero_point,
int32_t multiplier, int32_t shift)``. The output holds the kept axes in order (reduced axes kept as 1
have no bytes). For a mean, ``multiplier``/``shift`` already have 1/count folded in
(:func:`edgekit.ops.mean.fold_count`); a sum passes them unfolded. Each output is
``clamp(MultiplyByQuantizedMultiplier(sum(x - input_zero_point), multiplier, shift) + output_zero_point)``.

Loop order: the kept axes, then the reduction (for a spatial mean: channel, then H*W strided by C,
as TFLite's loop); the int32 sum is a scalar computed under the innermost kept loop and requantized
right after.
"""

from dataclasses import dataclass, fields
from functools import lru_cache

from tvm import te

from edgekit.codegen.kernels.fixed_point import clamp_to_int8, multiply_by_quantized_multiplier
from edgekit.codegen.kernels.kernel_source import ACC_STAGE, OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.ops.mean import MeanInt8Params

SCALARS = tuple(field.name for field in fields(MeanInt8Params))  # the C scalars are the op's int8 parameters


@dataclass(frozen=True)
class MeanSpec:
    """Static shape of one mean: the input shape and the reduced axes (default: H and W of an HWC input)."""

    input_shape: tuple[int, ...]
    axes: tuple[int, ...] = (0, 1)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The kept axes (one element when every axis is reduced)."""
        return tuple(d for a, d in enumerate(self.input_shape) if a not in self.axes) or (1,)


@lru_cache(maxsize=None)
def mean_kernel(spec: MeanSpec) -> KernelSource:
    """The C kernel ``ek_mean_s8_<hash>`` for ``spec``."""
    s = {name: te.var(name, "int32") for name in SCALARS}
    x = te.placeholder(spec.input_shape, "int8", name="input")
    reduced = {a: te.reduce_axis((0, spec.input_shape[a]), name=f"r{a}") for a in spec.axes}
    kept_axes = [a for a in range(len(spec.input_shape)) if a not in spec.axes]

    def total(*kept):
        kept_index = dict(zip(kept_axes, kept))  # empty when every axis is reduced (one output)
        read = x[tuple(kept_index[a] if a in kept_index else reduced[a] for a in range(len(spec.input_shape)))]
        return te.sum(read.astype("int32") - s["input_zero_point"], axis=list(reduced.values()))

    acc = te.compute(spec.output_shape, total, name=ACC_STAGE)
    output = te.compute(spec.output_shape, lambda *i: clamp_to_int8(
        multiply_by_quantized_multiplier(acc[i], s["multiplier"], s["shift"]) + s["output_zero_point"], -128, 127),
        name=OUTPUT_STAGE)

    def schedule(sch):
        innermost = sch.get_loops(sch.get_sblock(OUTPUT_STAGE))[-1]
        acc_block = sch.get_sblock(ACC_STAGE)
        sch.compute_at(acc_block, innermost)
        reduction_loops = sch.get_loops(acc_block)[len(spec.output_shape):]  # none left for a 1x1 input
        if reduction_loops:
            sch.decompose_reduction(acc_block, reduction_loops[0])

    return build_kernel("mean", spec, [x, output, *(s[name] for name in SCALARS)], schedule, ("input",))
