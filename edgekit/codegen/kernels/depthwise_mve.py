"""Helium (MVE) depthwise conv2d for CPUs with the M-profile vector extension (cortex-m55).

The DSP depthwise kernel (``mac_dsp``) works channel by channel; Helium vectors instead run across
channels, 4 at a time (a channel block), up to 4 output pixels of one row per step
sharing each filter tap's vector (the micro-kernels of ``ek_depthwise_mve.h``). It takes the DSP
kernels' inputs (``KernelSource.input_offset_in_bias``: the bias holds ``bias + input_offset *
sum(channel weights)``) and its filter in channel blocks (:func:`block_filter`).

Group by group of 16 channels, the input rows that one output row's windows read are copied into a
ring of rows in ``scratch`` (:func:`ring_shape`, 16 bytes a pixel, padding set to the input zero point),
so every window lies inside the ring and no loop tests a border. The buffer rules are those of the DSP
kernel's row window (``ops/depthwise_conv2d.py``): output row r of a group is written after the input
rows up to the last one r's windows read are copied, later rows are copied when a later output row
needs them, and a group's outputs overwrite only its own channels; so the kernel may write over its
own input as the planner allows (``DepthwiseConv2d.channelwise_overwrite_ok``), and its scratch is a
few rows (scratch-lean schedules keep it: 16 times the DSP row window's bytes; with a 3x3 window, less
than the DSP kernel's whole plane once the input is taller than 48 rows).
"""

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekit.codegen.kernels.kernel_source import KernelSource
from edgekit.codegen.kernels.mac_dsp import depthwise_supported, mac_kernel_source, plane_shape

HEADER_NAME = "ek_depthwise_mve.h"
HEADER_TEXT = (Path(__file__).with_name(HEADER_NAME)).read_text()
LANES = 4  # channels per vector: a channel block
GROUP = 16  # channels per ring pixel (EK_DW_GROUP)
PIXELS = 4  # output pixels per step at most (EK_DW_PIXELS)


def block_filter(weight: np.ndarray) -> np.ndarray:
    """A [1, KH, KW, C] depthwise filter as the kernel reads it: channel blocks of 4, each block's taps in
    order with 4 values each, the last block zero-padded, shape [ceil(C / 4), KH * KW, 4]: one block's
    taps lie within an immediate offset of one pointer."""
    taps = weight.shape[1] * weight.shape[2]
    channels = weight.shape[3]
    blocks = -(-channels // LANES)
    padded = np.zeros((taps, blocks * LANES), dtype=weight.dtype)
    padded[:, :channels] = weight.reshape(taps, channels)
    return np.ascontiguousarray(padded.reshape(taps, blocks, LANES).transpose(1, 0, 2))


def ring_shape(spec) -> tuple[int, int]:
    """Rows and columns of the ring: those of the DSP kernel's row window (the rows one output row's
    windows span, the columns they read), one 16-channel group deep instead of one channel."""
    return plane_shape(spec, row_window=True)


def scratch_bytes(spec) -> int:
    """The ring: 16 bytes (one channel group) a pixel."""
    rows, cols = ring_shape(spec)
    return rows * cols * GROUP


def _group_function(spec) -> str:
    """C of ``group()``: channels c..c+count-1 (a group of 16 or the last, partial one) of every output
    row, through the ring, 4 at a time."""
    height, width, channels = spec.input_shape
    out_h, out_w, _ = spec.output_shape
    window = spec.window
    (kernel_h, kernel_w), (stride_h, stride_w), (dilation_h, dilation_w) = window.kernel, window.stride, window.dilation
    top, left = window.padding[:2]
    rows, cols = ring_shape(spec)
    row_bytes = cols * GROUP
    taps = kernel_h * kernel_w
    reach = ((kernel_w - 1) * dilation_w + (PIXELS - 1) * stride_w) * GROUP  # the largest load offset
    centre = 0 if reach <= 127 else reach // 2
    skip = "" if stride_h <= rows else "        next = next > first ? next : first; /* rows no window reads */\n"
    pointers = ", ".join(f"ring + ((first + {top + ky * dilation_h}) % {rows}) * {row_bytes}" for ky in range(kernel_h))
    whole = out_w // PIXELS * PIXELS

    def steps(tail: str, indent: str) -> str:
        text = "" if whole == 0 else f"""{indent}for (int32_t ox = 0; ox < {whole}; ox += {PIXELS}) {{
{indent}    ek_dw_pixels(rows, ox * {GROUP * stride_w} + b, w, g, {PIXELS}, q, c + b, out + ox * {channels} + b, {tail});
{indent}}}
"""
        if out_w > whole:
            text += (f"{indent}ek_dw_pixels(rows, {whole * GROUP * stride_w} + b, w, g, {out_w - whole}, q, c + b, "
                     f"out + {whole * channels} + b, {tail});\n")
        return text

    return f"""/* Channels c..c+count-1 (16, or fewer in the last group) of every output row, through the ring, a block
 * of 4 at a time; input, filter and output at channel c. */
EK_INLINE void group(const int8_t *input, const int8_t *filter, const ek_requant_t *q, int32_t c, int8_t *output,
                     int8_t *ring, int8_t pad, int32_t count)
{{
    const ek_dw_shape_t g = {{{kernel_h}, {kernel_w}, {GROUP * dilation_w}, {GROUP * stride_w}, {centre}, {channels}}};
    int32_t next = {-top}; /* the next input row to copy (outside the input: padding) */
    for (int32_t oy = 0; oy < {out_h}; ++oy) {{
        const int32_t first = oy * {stride_h} - {top};
{skip}        for (; next < first + {rows}; ++next) {{
            const int32_t inside = next >= 0 && next < {height};
            ek_dw_copy_row(ring + ((next + {top}) % {rows}) * {row_bytes} + {left * GROUP},
                           input + (inside ? next : 0) * {width * channels}, inside, {width}, {channels}, pad, count);
        }}
        const int8_t *const rows[{kernel_h}] = {{{pointers}}};
        int8_t *out = output + oy * {out_w * channels};
        int32_t b = 0;
        _Pragma("GCC unroll 1") for (; b + {LANES} <= count; b += {LANES}) {{
            const int8_t *w = filter + b * {taps};
{steps("0", "            ")}        }}
        if (b < count) {{
            const int8_t *w = filter + b * {taps};
{steps("count - b", "            ")}        }}
    }}
}}

"""


@lru_cache(maxsize=None)
def depthwise_conv2d_mve_kernel(spec, narrow: bool = False, clamp: str = "any", lean: bool = False) -> KernelSource:
    """The Helium depthwise kernel for ``spec`` (a ``DepthwiseConv2dSpec``, depth multiplier 1); see the
    module docstring. ``narrow``, ``clamp``: as for the DSP kernels (``mac_dsp``); ``lean`` changes
    nothing (the ring already keeps only a few rows), it is accepted as every variant's keyword."""
    if not depthwise_supported(spec):
        raise ValueError(f"the Helium depthwise kernel needs depth multiplier 1, got {spec.depth_multiplier}")
    channels = spec.input_shape[2]
    taps = spec.window.kernel[0] * spec.window.kernel[1]
    whole = channels // GROUP * GROUP
    tail = "" if whole == channels else (f"\n    group(input + {whole}, filter + {whole * taps}, &q, {whole}, "
                                         f"output + {whole}, scratch, pad, {channels - whole});")
    body = f"""    const ek_requant_t q = {{bias, multiplier, shift, clamp}};
    const int8_t pad = (int8_t)(-input_offset);
    memset(scratch, pad, {scratch_bytes(spec)}); /* the ring's padding columns keep it */
    for (int32_t c = 0; c < {whole}; c += {GROUP}) {{
        group(input + c, filter + c * {taps}, &q, c, output + c, scratch, pad, {GROUP});
    }}{tail}"""
    helper = f'#include "{HEADER_NAME}"\n\n{_group_function(spec)}'
    kernel = mac_kernel_source("depthwise_conv2d", spec, narrow, body, scratch_bytes(spec), helper=helper,
                               mve=True, clamp=clamp)
    return replace(kernel, filter_blocks=True)
