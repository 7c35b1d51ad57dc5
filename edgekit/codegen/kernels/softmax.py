"""softmax int8 kernel over the last axis (TFLite's integer softmax, reference_ops::Softmax for int8).

``int32_t NAME(const int8_t* input, int8_t* output, int32_t input_multiplier, int32_t input_left_shift,
int32_t diff_min)`` on ``rows x depth`` elements; the three scalars are
:class:`~edgekit.ops.softmax.SoftmaxInt8Params`. Output scale is 1/256, zero point -128 (fixed by TFLite).

Per row, three passes over ``depth`` elements, as TFLite does: the row maximum; the sum of
exp(diff) in Q12.19 over the differences ``diff = x - max`` not below ``diff_min``; then each output
``exp(diff) * (1 / sum)``. The reciprocal and its exponent are computed once per row. exp is
evaluated in both element passes, exactly as in TFLite, instead of being stored. Row values and
the fixed-point intermediates are scalar stages (:mod:`~edgekit.codegen.kernels.scalar_stages`)
computed inside the loop that uses them, so the C keeps only scalars.
"""

from dataclasses import dataclass, fields
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.fixed_point import (exp_on_negative_values, get_reciprocal, is_at_least,
                                                 multiply_by_quantized_multiplier, rounding_divide_by_pot_of,
                                                 saturating_rounding_doubling_high_mul,
                                                 saturating_rounding_multiply_by_pot)
from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.codegen.kernels.scalar_stages import ScalarStages
from edgekit.ops.softmax import (ACCUMULATION_INTEGER_BITS, OUTPUT_ZERO_POINT, SCALED_DIFF_INTEGER_BITS,
                                 SoftmaxInt8Params)

SCALARS = tuple(field.name for field in fields(SoftmaxInt8Params))  # the C scalars are the op's int8 parameters
ROW_MAX_STAGE = "row_max"
SUM_STAGE = "sum_of_exps"


@dataclass(frozen=True)
class SoftmaxSpec:
    """Static shape of one softmax: ``rows`` independent rows of ``depth`` elements (the last axis)."""

    rows: int
    depth: int


@lru_cache(maxsize=None)
def softmax_kernel(spec: SoftmaxSpec) -> KernelSource:
    """The C kernel ``ek_softmax_s8_<hash>`` for ``spec``."""
    s = {name: te.var(name, "int32") for name in SCALARS}
    x = te.placeholder((spec.rows, spec.depth), "int8", name="input")
    k = te.reduce_axis((0, spec.depth), name="k")
    row_max = te.compute((spec.rows,), lambda r: te.max(x[r, k], axis=k), name=ROW_MAX_STAGE)

    def exp_of_difference(stages: ScalarStages):
        """(exp(diff * beta * input_scale) in Q0, 1 if diff >= diff_min else 0) at ``stages.index``.

        An out-of-range difference is replaced by 0 before the exp, as TFLite does; callers mask it.
        """
        r, c = stages.index
        diff = stages.bind("diff", x[r, c].astype("int32") - row_max[r].astype("int32"))
        in_range = stages.bind("in_range", is_at_least(diff, s["diff_min"]))  # diff in [-255, 0]: no overflow
        scaled_diff = multiply_by_quantized_multiplier(diff * in_range, s["input_multiplier"], s["input_left_shift"])
        return exp_on_negative_values(scaled_diff, SCALED_DIFF_INTEGER_BITS, stages.bind), in_range

    summed = ScalarStages("sum", (spec.rows, spec.depth))
    exp_q0, in_range = exp_of_difference(summed)
    term = in_range * saturating_rounding_multiply_by_pot(exp_q0, -ACCUMULATION_INTEGER_BITS)
    sum_of_exps = te.compute((spec.rows,), lambda r: te.sum(summed.at(term, (r, k)), axis=k), name=SUM_STAGE)

    per_row = ScalarStages("row", (spec.rows,))
    scale, num_bits_over_unit = get_reciprocal(sum_of_exps[per_row.index[0]], ACCUMULATION_INTEGER_BITS, per_row.bind)
    reciprocal = per_row.bind("reciprocal", scale)
    exponent = per_row.bind("exponent", num_bits_over_unit + (31 - 8))

    written = ScalarStages("out", (spec.rows, spec.depth))
    exp_q0, in_range = exp_of_difference(written)
    row = written.index[:1]
    unsaturated = rounding_divide_by_pot_of(
        saturating_rounding_doubling_high_mul(per_row.at(reciprocal, row), exp_q0), per_row.at(exponent, row))
    clamped = tirx.min(tirx.max(unsaturated + OUTPUT_ZERO_POINT, -128), 127)
    probability = (OUTPUT_ZERO_POINT + in_range * (clamped - OUTPUT_ZERO_POINT)).astype("int8")
    output = te.compute((spec.rows, spec.depth), lambda r, c: written.at(probability, (r, c)), name=OUTPUT_STAGE)

    def schedule(sch):
        row_loop, column_loop = sch.get_loops(sch.get_sblock(OUTPUT_STAGE))
        written.compute_at(sch, column_loop)
        per_row.compute_at(sch, row_loop)
        sum_block = sch.get_sblock(SUM_STAGE)
        sch.compute_at(sum_block, row_loop)
        summed.compute_at(sch, sch.get_loops(sum_block)[-1])  # the row loop itself when depth is 1
        sch.compute_at(sch.get_sblock(ROW_MAX_STAGE), row_loop)
        for stage in (ROW_MAX_STAGE, SUM_STAGE):
            block = sch.get_sblock(stage)
            reduction_loops = sch.get_loops(block)[1:]  # TE drops a reduction of extent 1
            if reduction_loops:
                sch.decompose_reduction(block, reduction_loops[0])

    args = [x, output, *(s[name] for name in SCALARS)]
    return build_kernel("softmax", spec, args, schedule, ("input",))
