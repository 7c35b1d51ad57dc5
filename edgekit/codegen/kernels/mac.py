"""What the multiply-accumulate kernels (conv2d, depthwise_conv2d, fully_connected) share.

They have one C signature and one epilogue:
``int32_t NAME(const int8_t* input, const int8_t* filter, const int32_t* bias,
const int32_t* multiplier, const int32_t* shift, int8_t* output, int32_t input_offset,
int32_t output_offset, int32_t act_min, int32_t act_max)``, and output channel ``oc`` is
``requantize(acc + bias[oc], multiplier[oc], shift[oc])``. Each family defines only its
accumulator stage (named :data:`ACC_STAGE`) and its loop order; :func:`build_mac_kernel` adds the
epilogue and fuses it into the accumulation loop nest, so no int32 tensor is ever stored.
``codegen.layer_calls.mac_call`` passes the arguments by these parameter names.
"""

from tvm import te

from edgekit.codegen.kernels.fixed_point import requantize
from edgekit.codegen.kernels.kernel_source import ACC_STAGE, OUTPUT_STAGE, KernelSource, build_kernel
from edgekit.codegen.kernels.window import padded

CONST_PARAMS = ("input", "filter", "bias", "multiplier", "shift")


class MacScalars:
    """The runtime int32 scalars of a MAC kernel, as TE vars named like the C parameters."""

    def __init__(self):
        self.input_offset = te.var("input_offset", "int32")
        self.output_offset = te.var("output_offset", "int32")
        self.act_min = te.var("act_min", "int32")
        self.act_max = te.var("act_max", "int32")

    def in_order(self) -> list:
        return [self.input_offset, self.output_offset, self.act_min, self.act_max]


def offset_input(x: te.Tensor, padding, scalars: MacScalars) -> te.Tensor:
    """The padded int32 stage ``x + input_offset`` inside the image, 0 in the padding."""
    return padded(x, padding, 0, lambda element: element.astype("int32") + scalars.input_offset)


def build_mac_kernel(family: str, spec, x: te.Tensor, filt: te.Tensor, acc: te.Tensor, scalars: MacScalars,
                     schedule_acc) -> KernelSource:
    """Add bias + requantization after ``acc`` (channels last), schedule, and lower to C.

    ``schedule_acc(sch, acc_block)`` orders the accumulator's loops and returns the innermost loop
    over output positions, under which one output element's epilogue runs.
    """
    channels = int(acc.shape[-1])
    bias = te.placeholder((channels,), "int32", name="bias")
    multiplier = te.placeholder((channels,), "int32", name="multiplier")
    shift = te.placeholder((channels,), "int32", name="shift")

    def epilogue(*index):
        oc = index[-1]
        return requantize(acc[index] + bias[oc], multiplier[oc], shift[oc], scalars.output_offset,
                          scalars.act_min, scalars.act_max)

    output = te.compute(acc.shape, epilogue, name=OUTPUT_STAGE)

    def schedule(sch):
        acc_block = sch.get_sblock(ACC_STAGE)
        channel_loop = schedule_acc(sch, acc_block)
        sch.reverse_compute_at(sch.get_sblock(OUTPUT_STAGE), channel_loop)

    args = [x, filt, bias, multiplier, shift, output, *scalars.in_order()]
    return build_kernel(family, spec, args, schedule, CONST_PARAMS)
