"""Padded views of an HWC input for sliding-window kernels (convolutions and pooling).

Padding is a TE stage that every kernel schedule inlines (``compute_inline``): the generated C never
materialises a padded copy, it tests each tap's bounds inline and uses ``fill`` outside.
"""

from tvm import te, tirx

PAD_STAGE = "pad"


def padded(x: te.Tensor, padding, fill, value=lambda element: element):
    """[H+top+bottom, W+left+right, C] stage: ``value(x[...])`` inside the image, ``fill`` outside."""
    height, width, channels = (int(d) for d in x.shape)
    top, left, bottom, right = padding

    def element(h, w, c):
        inside = tirx.all(h >= top, h < top + height, w >= left, w < left + width)
        return tirx.if_then_else(inside, value(x[h - top, w - left, c]), fill)

    return te.compute((height + top + bottom, width + left + right, channels), element, name=PAD_STAGE)


def window_axes(kernel) -> tuple[tirx.IterVar, tirx.IterVar]:
    """The two reduction axes (kernel row, kernel column) of a sliding window."""
    return te.reduce_axis((0, kernel[0]), name="kh"), te.reduce_axis((0, kernel[1]), name="kw")


def tap(x_padded: te.Tensor, window, oh, ow, kh, kw, c):
    """The element under kernel tap (kh, kw) of output (oh, ow)'s ``window`` (an ``ops.window.Window``), channel c."""
    stride, dilation = window.stride, window.dilation
    return x_padded[oh * stride[0] + kh * dilation[0], ow * stride[1] + kw * dilation[1], c]
