"""The op registry: one definition per op, looked up by name by every other part of edgekit."""

from edgekit.errors import UnsupportedOpError
from edgekit.ops import (add, batch_norm, clamp, concat, conv2d, depthwise_conv2d, fully_connected, hard_swish, leaky_relu,
                         logistic, mean, minmax, mul, pad, pool2d, prelu, quantize, reshape, resize, softmax,
                         squared_difference, strided_slice, sub, tanh, transpose)
from edgekit.ops.base import OpDef

OPS: dict[str, OpDef] = {
    op.name: op
    for op in (
        add.OP, batch_norm.OP, clamp.OP, concat.OP, conv2d.OP, depthwise_conv2d.OP, fully_connected.OP, mean.OP, pad.OP,
        pool2d.AVG, pool2d.MAX, quantize.QUANTIZE, quantize.DEQUANTIZE, reshape.OP, softmax.OP, transpose.OP,
        mul.OP, sub.OP, squared_difference.OP, minmax.MAXIMUM, minmax.MINIMUM, prelu.OP, leaky_relu.OP, hard_swish.OP,
        logistic.OP, tanh.OP, resize.NEAREST, resize.BILINEAR, strided_slice.OP,
    )
}


def get_op(name: str, node=None) -> OpDef:
    """The definition of op ``name``; UnsupportedOpError naming the node when there is none."""
    try:
        return OPS[name]
    except KeyError:
        where = f" (node {node.name})" if node is not None else ""
        raise UnsupportedOpError(
            f"op {name!r}{where} is not supported; supported ops: {', '.join(sorted(OPS))}"
        ) from None
