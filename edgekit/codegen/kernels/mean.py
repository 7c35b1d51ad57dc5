"""mean int8 kernel over the spatial axes (TFLite's reference_ops::QuantizedMeanOrSum, global average).

``int32_t NAME(const int8_t* input, int8_t* output, int32_t input_zero_point, int32_t output_zero_point,
int32_t multiplier, int32_t shift)`` on an HWC input and C outputs. ``multiplier``/``shift`` already
have 1/(H*W) folded in (:func:`edgekit.ops.mean.fold_count`), so each output is
``clamp(MultiplyByQuantizedMultiplier(sum(x - input_zero_point), multiplier, shift) + output_zero_point)``.

Loop order: channel, then the H*W reduction (strided by C, as TFLite's loop); the int32 sum is a
scalar computed under the channel loop and requantized right after.
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
    """Static shape of one spatial mean: the input (H, W, C)."""

    input_shape: tuple[int, int, int]


@lru_cache(maxsize=None)
def mean_kernel(spec: MeanSpec) -> KernelSource:
    """The C kernel ``ek_mean_s8_<hash>`` for ``spec``."""
    height, width, channels = spec.input_shape
    s = {name: te.var(name, "int32") for name in SCALARS}
    x = te.placeholder(spec.input_shape, "int8", name="input")
    h = te.reduce_axis((0, height), name="h")
    w = te.reduce_axis((0, width), name="w")
    acc = te.compute((channels,), lambda c: te.sum(x[h, w, c].astype("int32") - s["input_zero_point"], axis=[h, w]),
                     name=ACC_STAGE)
    output = te.compute((channels,), lambda c: clamp_to_int8(
        multiply_by_quantized_multiplier(acc[c], s["multiplier"], s["shift"]) + s["output_zero_point"], -128, 127),
        name=OUTPUT_STAGE)

    def schedule(sch):
        (channel,) = sch.get_loops(sch.get_sblock(OUTPUT_STAGE))
        acc_block = sch.get_sblock(ACC_STAGE)
        sch.compute_at(acc_block, channel)
        reduction_loops = sch.get_loops(acc_block)[1:]  # none left for a 1x1 input
        if reduction_loops:
            sch.decompose_reduction(acc_block, reduction_loops[0])

    return build_kernel("mean", spec, [x, output, *(s[name] for name in SCALARS)], schedule, ("input",))
