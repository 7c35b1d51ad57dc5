"""transpose_conv int8 kernel (TFLite Micro's TransposeConv), written as a gather: output element
(oy, ox, oc) sums (x[iy, ix, ic] + input_offset) * w[oc, fy, fx, ic] over the taps whose input pixel
iy = (oy + pad_top - fy) / stride (and likewise ix) is whole and inside the input, which is the set
of products TFLite scatters into it; integer sums do not depend on the order. Then the MAC epilogue
(bias, per-channel requantization, clamp) of :mod:`edgekit.codegen.kernels.mac`, same C signature.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.kernel_source import ACC_STAGE, KernelSource
from edgekit.codegen.kernels.mac import MacScalars, build_mac_kernel


@dataclass(frozen=True)
class TransposeConvSpec:
    """Static shape of one transpose_conv: input (H, W, I), filter (O, KH, KW, I), stride, top/left
    padding and output size."""

    input_shape: tuple[int, int, int]
    filter_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_hw: tuple[int, int]


@lru_cache(maxsize=None)
def transpose_conv_kernel(spec: TransposeConvSpec) -> KernelSource:
    """The C kernel ``ek_transpose_conv_s8_<hash>`` for ``spec``."""
    scalars = MacScalars()
    x = te.placeholder(spec.input_shape, "int8", name="input")
    filt = te.placeholder(spec.filter_shape, "int8", name="filter")
    out_channels, kh, kw, in_channels = spec.filter_shape
    fy, fx = te.reduce_axis((0, kh), name="fy"), te.reduce_axis((0, kw), name="fx")
    ic = te.reduce_axis((0, in_channels), name="ic")

    def source(out_index, tap, axis):
        """The input index this output index reads through ``tap``, and whether it exists."""
        offset = out_index + spec.padding[axis] - tap
        index = tirx.floordiv(offset, spec.stride[axis])
        exists = tirx.all(offset >= 0, tirx.floormod(offset, spec.stride[axis]) == 0,
                          index < spec.input_shape[axis])
        return index, exists

    def element(oy, ox, oc):
        iy, row_ok = source(oy, fy, 0)
        ix, col_ok = source(ox, fx, 1)
        product = (x[iy, ix, ic].astype("int32") + scalars.input_offset) * filt[oc, fy, fx, ic].astype("int32")
        return te.sum(tirx.if_then_else(tirx.all(row_ok, col_ok), product, 0), axis=[fy, fx, ic])

    acc = te.compute((*spec.output_hw, out_channels), element, name=ACC_STAGE)

    def schedule_acc(sch, acc_block):
        _, _, out_channel, kernel_row, _, _ = sch.get_loops(acc_block)
        sch.decompose_reduction(acc_block, kernel_row)
        return out_channel

    return build_mac_kernel("transpose_conv", spec, x, filt, acc, scalars, schedule_acc)
