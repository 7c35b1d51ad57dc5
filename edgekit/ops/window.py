"""Sliding-window geometry shared by convolutions and pooling (kernel, stride, dilation, padding)."""

from dataclasses import dataclass

import numpy as np

from edgekit.errors import UnsupportedOpError


def _check_window(kernel: int, stride: int, dilation: int) -> None:
    """A model file's window attributes (checked here, where they are first used to size a tensor)."""
    if min(kernel, stride, dilation) < 1:
        raise UnsupportedOpError(f"a window op has kernel {kernel}, stride {stride}, dilation {dilation}; each must "
                                 "be at least 1")


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    """Output length of a window op along one axis (TFLite/PyTorch floor semantics)."""
    _check_window(kernel, stride, dilation)
    effective = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite's SAME padding along one axis: (before, after), the extra pixel going after."""
    _check_window(kernel, stride, dilation)
    out = -(-size // stride)
    effective = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def output_hw(in_hw, kernel, stride, dilation, padding) -> tuple[int, int]:
    """(out_h, out_w) from (h, w), (kh, kw), strides, dilations and (top, left, bottom, right)."""
    top, left, bottom, right = padding
    return (
        output_size(in_hw[0], kernel[0], stride[0], dilation[0], top, bottom),
        output_size(in_hw[1], kernel[1], stride[1], dilation[1], left, right),
    )


def pad_hw(x: np.ndarray, padding, value=0) -> np.ndarray:
    """Pad an NHWC array spatially by (top, left, bottom, right) with ``value``."""
    top, left, bottom, right = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def windows(x_padded: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """View of shape [OH, OW, KH, KW, C] over an already padded [1, H, W, C] array."""
    kh, kw = kernel
    dh, dw = dilation
    sh, sw = stride
    oh, ow = out_hw
    view = np.lib.stride_tricks.sliding_window_view(
        x_padded[0], ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(0, 1)
    )  # [H', W', C, EKH, EKW]
    view = view[: (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    return view.transpose(0, 1, 3, 4, 2)


@dataclass(frozen=True)
class Window:
    """The geometry of a sliding-window layer: kernel (KH, KW), stride, dilation and padding (top, left,
    bottom, right). The op definitions derive it from their attrs (``OpDef.window``), kernel specs
    hold it, and the patch planner propagates regions through it. A pointwise op is the default."""

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self):
        """Plain int tuples whatever was given (lists, NumPy ints): kernel names hash the repr."""
        for name in ("kernel", "stride", "dilation", "padding"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    def output_hw(self, in_hw) -> tuple[int, int]:
        """(out_h, out_w) of an (h, w) input."""
        return output_hw(in_hw, self.kernel, self.stride, self.dilation, self.padding)
