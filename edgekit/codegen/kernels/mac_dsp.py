"""DSP-extension kernels (cortex-m4, -m7, -m55) for conv2d, depthwise_conv2d and fully_connected.

TVM 0.27 has no Cortex-M schedules and cannot print SXTB16/SMLAD register blocking itself, so these
kernels are C written by edgekit: a short function per static shape that calls the always-inline
micro-kernels of ``ek_mac_dsp.h`` with compile-time constants (gcc specialises every loop). They
keep the MAC kernels' C signature (:mod:`edgekit.codegen.kernels.mac`), plus ``int8_t* scratch``
after ``output`` where they need one, and compute exactly what the TVM kernels compute, with two
differences in their inputs (``KernelSource.input_offset_in_bias``): the bias array holds
``bias + input_offset * sum(weights of the channel)``, and padding reads the input zero point.

- conv2d: two output pixels at a time times two output channels (2x2 register blocking). A 1x1
  unpadded stride-1 convolution reads its pixels in place; any other window first copies the two
  pixels' receptive fields into an int8 ``scratch`` (im2col of two pixels, ``2 * KH * KW * Cin`` bytes).
  The DSP variants then widen the two pixels' values once to int16 (interleaved, ``ek_widen``) at the
  start of ``scratch``, so the inner loop re-widens nothing per output channel.
- fully_connected: one row (widened once), two output channels at a time.
- conv2d and fully_connected come in three variants: ``dsp`` reads int8 weights (SXTB16 in the loop);
  ``dsp_w16`` reads weights widened to int16 at compile time in SMLAD order, channel pairs interleaved
  (:func:`widen_weights`), which saves those SXTB16s for twice the weight flash; ``mve`` (CPUs with
  Helium, cortex-m55) makes the dot products with VMLADAVA on int8 rows, 16 MACs per instruction.
- depthwise_conv2d (depth multiplier 1): ``dsp`` runs channel by channel through a padded plane in
  ``scratch`` (or a row window, lean), the channel's taps, bias and requantization held in registers
  (see :func:`depthwise_conv2d_dsp_kernel`); ``dsp_c4`` (3x3, stride 1 or 2) four channels at a time
  through a ring of three input rows widened to int16 planes, two taps per SMLAD
  (:func:`depthwise_conv2d_c4_kernel`).
"""

from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekit.codegen.kernels.kernel_source import KernelSource, kernel_name

HEADER_NAME = "ek_mac_dsp.h"
HEADER_TEXT = (Path(__file__).with_name(HEADER_NAME)).read_text()
VARIANT = "dsp"
VARIANT_W16 = "dsp_w16"
VARIANT_MVE = "mve"
VARIANT_C4 = "dsp_c4"

_PARAMS = ("const int8_t* input, const {weight}* filter, const int32_t* bias, const int32_t* multiplier, "
           "const int32_t* shift, int8_t* output")
#: the narrow conv2d and fully_connected kernels read bias and requantization from one table instead
_PARAMS_TABLE = "const int8_t* input, const {weight}* filter, const int32_t* channels, int8_t* output"
_SCALARS = "int32_t input_offset, int32_t output_offset, int32_t act_min, int32_t act_max"
_REQUANT = "const ek_requant_t q = {bias, multiplier, shift, clamp};"
_REQUANT_TABLE = "const ek_requant_t q = {channels, clamp};"


CLAMPS = ("any", "upper", "relu", "full")


def clamp_kind(act_min: int, act_max: int, output_offset: int | None = None) -> str:
    """What the kernel may assume of a layer's activation clamp at compile time: ``full`` (the whole
    int8 range: one SSAT), ``relu`` (act_max 127 and act_min the output zero point ``output_offset``, a
    fused ReLU or ReLU6 whose top is beyond int8: SSAT only, see ek_gemm_output), ``upper`` (act_max
    127: SSAT, then act_min), ``any``."""
    if act_max != 127:
        return "any"
    if act_min == -128:
        return "full"
    return "relu" if act_min == output_offset else "upper"


_CLAMP_C = {"any": "{output_offset, act_min, act_max}", "upper": "{output_offset, act_min, 127}",
            "relu": "{output_offset, output_offset, 127}", "full": "{output_offset, -128, 127}"}


def mac_kernel_source(family: str, spec, narrow: bool, body: str, scratch_bytes: int = 0, weights16: bool = False,
                      helper: str = "", mve: bool = False, clamp: str = "any", lean: bool = False,
                      table: bool = False, variant: str | None = None) -> KernelSource:
    """The kernel's C: the header, ``helper`` (static functions), then the kernel function around ``body``
    (the DSP kernels here and the Helium depthwise kernel of ``depthwise_mve`` share it).
    ``clamp`` (:func:`clamp_kind`) is compiled in: the ``full`` and ``upper`` kernels ignore the clamp
    arguments they know (the caller passes the same values). ``lean``: the scratch-lean form
    (``EK_LEAN``), a kernel of its own name. ``table`` (``EK_CHANNEL_TABLE``, narrow kernels only): bias
    and requantization come in one array, ``channels`` (:func:`channel_table`), in place of ``bias``,
    ``multiplier`` and ``shift``; with int16 weights too the caller passes weights and bias doubled
    (``EK_DOUBLED``, ``KernelSource.doubled_products``): the narrow requantization starts from the
    doubled accumulator, which then costs no shift per output. ``variant``: the schedule's name where
    the flags do not say it."""
    if clamp not in CLAMPS:
        raise ValueError(f"clamp kind {clamp!r}: one of {', '.join(CLAMPS)}")
    variant = variant or (VARIANT_MVE if mve else VARIANT_W16 if weights16 else VARIANT)
    key = (spec, "lean") if lean else spec
    key = (key, "narrow") if narrow else key
    name = kernel_name(family, key if clamp == "any" else (key, f"clamp {clamp}"),
                       f"{variant}_narrow" if narrow else variant)
    scratch = ", int8_t* scratch" if scratch_bytes else ""
    table = table and narrow
    doubled = table and weights16
    params = (_PARAMS_TABLE if table else _PARAMS).format(weight="int16_t" if weights16 else "int8_t")
    prototype = f"int32_t {name}({params}{scratch}, {_SCALARS})"
    body = body.replace(_REQUANT, _REQUANT_TABLE) if table else body
    code = (f'#define EK_NARROW_ACC {int(narrow)}\n#define EK_WEIGHTS_INT16 {int(weights16)}\n#define EK_MVE {int(mve)}\n'
            f'#define EK_LEAN {int(lean)}\n#define EK_RELU {int(clamp == "relu")}\n#define EK_CHANNEL_TABLE {int(table)}\n'
            f'#define EK_DOUBLED {int(doubled)}\n'
            f'#include "{HEADER_NAME}"\n\n{helper}/* {family} {spec}, clamp {clamp} */\n{prototype}\n{{\n'
            f"    const ek_clamp_t clamp = {_CLAMP_C[clamp]};\n    (void)act_min;\n    (void)act_max;\n{body}\n"
            "    return 0;\n}\n")
    return KernelSource(name, code, prototype, scratch_bytes, input_offset_in_bias=True, variant=variant,
                        weights_int16=weights16, doubled_products=doubled)


def conv2d_supported(spec) -> bool:
    """Any conv2d: the im2col handles every window, stride, dilation and padding."""
    return True


def narrow_accumulators(folded_bias: np.ndarray, shift: np.ndarray, depth: int) -> bool:
    """Whether a layer may use the narrow requantization of ek_mac_dsp.h: every shift is a right shift
    of at least 1, and |bias| + depth * 128 * 127 < 2^30 bounds every accumulator (``depth``: the
    products summed per output; padding reads the zero point, an int8 like any input)."""
    bound = int(np.abs(folded_bias.astype(np.int64)).max(initial=0)) + depth * 128 * 127
    return bool(np.all(shift <= -1)) and bound < (1 << 30)


@lru_cache(maxsize=None)
def conv2d_dsp_kernel(spec, weights16: bool = False, narrow: bool = False, mve: bool = False,
                      clamp: str = "any", lean: bool = False) -> KernelSource:
    """2x2-blocked conv2d for ``spec`` (a ``Conv2dSpec``); see the module docstring. ``narrow``: the layer
    passed :func:`narrow_accumulators`; ``mve``: Helium dot products (int8 weights); ``clamp``: the
    layer's :func:`clamp_kind`; ``lean`` (DSP): no widened copy in scratch, the int8 rows are widened
    in the loop (schedules that minimise SRAM, see ``variants.KernelChoice.lean``)."""
    height, width, channels = spec.input_shape
    out_h, out_w, out_c = spec.output_shape
    depth = spec.window.kernel[0] * spec.window.kernel[1] * channels
    pixels = out_h * out_w
    direct = spec.window.kernel == (1, 1) and spec.window.stride == (1, 1) and not any(spec.window.padding)
    # the two pixels' receptive fields: rows of the input itself (1x1, stride 1, no padding), or copied
    # one after the other into int8 scratch by column(); the DSP variants then widen them to int16 rows
    # at the start of scratch (ek_widen), ahead of the int8 copy; Helium reads the int8 rows
    widen = not (mve or lean)
    wide_bytes = 2 * 2 * wide_row(depth) if widen else 0
    prologue = "    (void)input_offset;" if direct else "    const int8_t pad = (int8_t)(-input_offset);"
    if widen:
        prologue += f"\n    int16_t *wide = (int16_t *)(void *)scratch;"
    if not direct:
        prologue += f"\n    int8_t *cols = scratch + {wide_bytes};"
    field = (lambda i: f"input + (p + {i}) * {depth}") if direct else (lambda i: f"cols + {i * depth}")
    gathers = {count: "".join(f"        column(input, p + {i}, pad, cols + {i * depth});\n" for i in range(count))
               if not direct else "" for count in (1, 2)}
    if widen:  # the block's pixels interleaved group by group; a lone pixel as a plain row
        row = "wide"
        for count in (1, 2):
            gathers[count] += "".join(f"        ek_widen({field(i)}, wide + {4 * i}, {depth}, {4 * count});\n"
                                      for i in range(count))
    else:
        row = field(0)
    body = f"""    {_REQUANT}
{prologue}
    int32_t p = 0;
    for (; p + 2 <= {pixels}; p += 2) {{
{gathers[2]}        ek_gemm({row}, filter, {depth}, {out_c}, 2, &q, output + p * {out_c});
    }}
    if (p < {pixels}) {{
{gathers[1]}        ek_gemm({row}, filter, {depth}, {out_c}, 1, &q, output + p * {out_c});
    }}"""
    scratch = wide_bytes + (0 if direct else 2 * depth)
    return mac_kernel_source("conv2d", spec, narrow, body, scratch, weights16,
                             "" if direct else _column_function(spec), mve, clamp, lean and not mve, table=True)


def _column_function(spec) -> str:
    """C of ``column()``: the receptive field of output pixel p, (KH, KW, Cin) bytes, padding = ``pad``."""
    height, width, channels = spec.input_shape
    out_w = spec.output_shape[1]
    kernel_h, kernel_w = spec.window.kernel
    (stride_h, stride_w), (dilation_h, dilation_w) = spec.window.stride, spec.window.dilation
    top, left = spec.window.padding[0], spec.window.padding[1]
    run = kernel_w * channels
    contiguous_row = "" if dilation_w != 1 else f"""        if (x0 >= 0 && x0 + {kernel_w} <= {width}) {{
            memcpy(dst, src + x0 * {channels}, {run});
            continue;
        }}
"""
    return f"""/* The receptive field of output pixel p into dst, (KH, KW, Cin) as the filter; padding reads `pad`. */
static void column(const int8_t *input, int32_t p, int8_t pad, int8_t *dst)
{{
    const int32_t y0 = (p / {out_w}) * {stride_h} - {top}, x0 = (p % {out_w}) * {stride_w} - {left};
    for (int32_t ky = 0; ky < {kernel_h}; ++ky, dst += {run}) {{
        const int32_t y = y0 + ky * {dilation_h};
        if (y < 0 || y >= {height}) {{
            memset(dst, pad, {run});
            continue;
        }}
        const int8_t *src = input + y * {width * channels};
{contiguous_row}        for (int32_t kx = 0; kx < {kernel_w}; ++kx) {{
            const int32_t x = x0 + kx * {dilation_w};
            if (x < 0 || x >= {width}) {{
                memset(dst + kx * {channels}, pad, {channels});
            }} else {{
                memcpy(dst + kx * {channels}, src + x * {channels}, {channels});
            }}
        }}
    }}
}}
"""


@lru_cache(maxsize=None)
def fully_connected_dsp_kernel(spec, weights16: bool = False, narrow: bool = False, mve: bool = False,
                               clamp: str = "any", lean: bool = False) -> KernelSource:
    """fully_connected for ``spec`` (a ``FullyConnectedSpec``), one output at a time; ``lean`` as for
    :func:`conv2d_dsp_kernel`."""
    row, scratch = "input", 0
    widen = ""
    if not (mve or lean):  # the input row widened once (ek_widen) into scratch
        row, scratch = "(int16_t *)(void *)scratch", 2 * wide_row(spec.in_features)
        widen = f"\n    ek_widen(input, {row}, {spec.in_features}, 4);"
    body = f"""    {_REQUANT}
    (void)input_offset;{widen}
    ek_gemm({row}, filter, {spec.in_features}, {spec.out_features}, 1, &q, output);"""
    return mac_kernel_source("fully_connected", spec, narrow, body, scratch, weights16=weights16, mve=mve,
                             clamp=clamp, lean=lean and not mve, table=True)


def wide_row(depth: int) -> int:
    """int16 values in a widened row of ``depth`` values (ek_row in ek_mac_dsp.h; :func:`widen_weights`)."""
    return (depth + 3) // 4 * 4


def widen_weights(weight: np.ndarray, doubled: bool = False) -> np.ndarray:
    """int8 weights [N, ...] as the _w16 kernels read them (see ek_mac_dsp.h), times 2 if ``doubled``
    (``KernelSource.doubled_products``): per output channel, the
    K = prod(...) values as int16 in groups of 4, each whole group in SMLAD order (w0, w2, w1, w3), the
    last partial group in order, zero-padded to a multiple of 4; the rows of channels 2i and 2i + 1
    interleaved group by group, a last odd channel's row plain. Shape [N, K rounded up to 4]."""
    rows = weight.reshape(weight.shape[0], -1).astype(np.int16) * np.int16(1 + doubled)
    channels, depth = rows.shape
    widened = np.zeros((channels, wide_row(depth)), dtype=np.int16)
    widened[:, :depth] = rows
    whole = depth // 4 * 4
    groups = widened[:, :whole].reshape(channels, -1, 4)
    widened[:, :whole] = groups[:, :, [0, 2, 1, 3]].reshape(channels, whole)
    paired = channels // 2 * 2
    pairs = widened[:paired].reshape(paired // 2, 2, widened.shape[1] // 4, 4).transpose(0, 2, 1, 3)
    widened[:paired] = pairs.reshape(paired, widened.shape[1])
    return widened


def channel_table(folded_bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                  doubled: bool = False) -> np.ndarray:
    """The ``channels`` array of the narrow conv2d and fully_connected kernels (ek_requant_t in
    ek_mac_dsp.h): per pair of output channels 2i, 2i + 1, six int32 values, bias 2i, bias 2i + 1
    (times 2 if ``doubled``: ``KernelSource.doubled_products``; narrow biases are within +-2^30),
    multiplier 2i, multiplier 2i + 1, right shift - 1 of 2i and of 2i + 1 (the narrow form's first
    shift, ``-shift - 1``); a last odd channel's pair has zeros for the missing one. One pointer walks
    it, so a pair's six values are loads at constant offsets from it."""
    channels = len(folded_bias)
    padded = (channels + 1) // 2 * 2
    rows = np.zeros((3, padded), dtype=np.int64)
    rows[0, :channels], rows[1, :channels] = np.asarray(folded_bias, dtype=np.int64) * (1 + doubled), multiplier
    rows[2, :channels] = -np.asarray(shift, dtype=np.int64) - 1
    return rows.reshape(3, padded // 2, 2).transpose(1, 0, 2).reshape(-1).astype(np.int32)


def depthwise_supported(spec) -> bool:
    """Depth multiplier 1 (the other multipliers keep the portable kernel)."""
    return spec.depth_multiplier == 1


def plane_shape(spec, row_window: bool) -> tuple[int, int]:
    """Rows and columns of one channel's padded plane: the input with its top/left padding and what
    the windows read beyond it (bottom/right padding that is read); with ``row_window`` only the
    rows of one output row's windows (KH, dilated)."""
    (height, width, _), (out_h, out_w, _) = spec.input_shape, spec.output_shape
    window = spec.window
    span = (window.kernel[0] - 1) * window.dilation[0] + 1
    rows = span if row_window else max(window.padding[0] + height, (out_h - 1) * window.stride[0] + span)
    cols = max(window.padding[1] + width, (out_w - 1) * window.stride[1] + (window.kernel[1] - 1) * window.dilation[1] + 1)
    return rows, cols


def depthwise_scratch_bytes(spec, row_window: bool = False) -> int:
    """One padded plane (or row window), plus 4 bytes that a last 4-byte read may touch."""
    rows, cols = plane_shape(spec, row_window)
    return rows * cols + 4


def _copy_row(spec, to: str, y: str, indent: str) -> str:
    """C copying input row ``y`` of channel c into plane row ``to`` (padding columns left alone)."""
    height, width, channels = spec.input_shape
    return f"""{indent}const int8_t *from = input + {y} * {width * channels} + c;
{indent}EK_UNROLL4 for (int32_t x = 0; x < {width}; ++x) {{
{indent}    {to}[x] = from[x * {channels}];
{indent}}}"""


def _fill_plane(spec, plane_cols: int) -> str:
    """C run once per channel: its whole padded plane (the padding rows stay as memset)."""
    top, left = spec.window.padding[0], spec.window.padding[1]
    return f"""        for (int32_t y = 0; y < {spec.input_shape[0]}; ++y) {{
            int8_t *to = plane + (y + {top}) * {plane_cols} + {left};
{_copy_row(spec, "to", "y", "            ")}
        }}
"""


def _fill_row_window(spec, plane_rows: int, plane_cols: int) -> str:
    """C run before output row oy: the window's rows, those the previous window shares moved up a
    word at a time (forward, so no word is written before it is read; a last partial word spills
    into the next row's first bytes, left padding or columns copied right after), the others copied
    from the input or set to padding."""
    height, width, _ = spec.input_shape
    stride_h, (top, left) = spec.window.stride[0], spec.window.padding[:2]
    keep = max(0, plane_rows - stride_h)
    move_up = "" if keep == 0 else f"""            if (oy > 0) {{
                EK_UNROLL4 for (int32_t k = 0; k < {keep * plane_cols}; k += 4) {{
                    const int32_t v = ek_read_s8x4(plane + {stride_h * plane_cols} + k);
                    memcpy(plane + k, &v, 4);
                }}
                i = {keep};
            }}
"""
    return f"""            int32_t i = 0;
{move_up}            for (; i < {plane_rows}; ++i) {{
                const int32_t y = oy * {stride_h} - {top} + i;
                int8_t *to = plane + i * {plane_cols} + {left};
                if (y < 0 || y >= {height}) {{
                    memset(to, (int8_t)(-input_offset), {width});
                    continue;
                }}
{_copy_row(spec, "to", "y", "                ")}
            }}
"""


def _taps_3x3(plane_cols: int, pair: bool) -> str:
    """A 3x3 window (two adjacent ones if ``pair``) from one 4-byte read per kernel row: bytes x0..x3 give
    x0 w0 + x1 w1 + x2 w2 (SMLAD of (x0, x2) with (w0, w2), then SMLABB of x1), and the pixel to its
    right x1 w0 + x2 w1 + x3 w2 (SMLAD of (x1, x3), then SMLATB of x2)."""
    lines = []
    for ky in range(3):
        right = """
                    acc1 = ek_smlad(odd, w02_{ky}, acc1);
                    acc1 = ek_smlatb(even, w1_{ky}, acc1);""".format(ky=ky) if pair else ""
        lines.append(f"""                {{
                    const int32_t v = ek_read_s8x4(src + {ky * plane_cols});
                    const int32_t even = ek_sxtb16(v), odd = ek_sxtb16_ror8(v);
                    acc0 = ek_smlad(even, w02_{ky}, acc0);
                    acc0 = ek_smlabb(odd, w1_{ky}, acc0);{right}
                }}""")
    return "\n".join(lines)


@lru_cache(maxsize=None)
def depthwise_conv2d_dsp_kernel(spec, narrow: bool = False, clamp: str = "any", lean: bool = False) -> KernelSource:
    """Channel-by-channel depthwise conv2d for ``spec`` (a ``DepthwiseConv2dSpec``, multiplier 1).

    Each channel is first copied into a padded plane in ``scratch`` (padding = the input zero
    point), so every window is interior and contiguous. 3x3 windows (dilation 1) then read each
    kernel row with one 4-byte load and SXTB16/SMLAD, two output pixels per step at stride 1; other
    windows run unrolled taps with constant offsets. Output channel c is written after input
    channel c is copied, and covers only elements of channel c, so the kernel may write over its
    own input (the in-place rule of ``ops/depthwise_conv2d.py``).

    ``lean`` (patched schedules, see ``variants.KernelChoice.lean``): a *row window*, the plane
    holds only the KH rows of one output row's windows. Before each output row the rows
    the previous one read too move up and the others are copied from the input (each input row
    once when the stride is at most KH): scratch of KH rows instead of the whole plane, for about
    14% more instructions (VWW's depthwise layers on cortex-m7). Output row r is then written after
    the input rows up to r's windows are copied (``DepthwiseConv2d.channelwise_overwrite_ok``).
    """
    if not depthwise_supported(spec):
        raise ValueError(f"the DSP depthwise kernel needs depth multiplier 1, got {spec.depth_multiplier}")
    height, width, channels = spec.input_shape
    out_h, out_w, _ = spec.output_shape
    kernel_h, kernel_w = spec.window.kernel
    (stride_h, stride_w), (dilation_h, dilation_w) = spec.window.stride, spec.window.dilation
    row_window = lean
    plane_rows, plane_cols = plane_shape(spec, row_window)
    requantize = "ek_output({acc}, scale, clamp)"
    pairs = ""
    if spec.window.kernel == (3, 3) and spec.window.dilation == (1, 1):
        weights = "\n".join(
            f"        const int32_t w02_{ky} = ek_pack_s16x2(w[{3 * ky * channels}], w[{(3 * ky + 2) * channels}]), "
            f"w1_{ky} = w[{(3 * ky + 1) * channels}];" for ky in range(3))
        single_taps = _taps_3x3(plane_cols, pair=False)
        if spec.window.stride[1] == 1:
            pairs = f"""            for (; ox + 2 <= {out_w}; ox += 2, src += 2, out += {2 * channels}) {{
                int32_t acc0 = b, acc1 = b;
{_taps_3x3(plane_cols, pair=True)}
                out[0] = {requantize.format(acc="acc0")};
                out[{channels}] = {requantize.format(acc="acc1")};
            }}
"""
    else:
        taps = [(ky, kx) for ky in range(kernel_h) for kx in range(kernel_w)]
        weights = "\n".join(f"        const int32_t w{t} = w[{t * channels}];" for t in range(len(taps)))
        single_taps = "\n".join(
            f"                acc0 += src[{ky * dilation_h * plane_cols + kx * dilation_w}] * w{t};"
            for t, (ky, kx) in enumerate(taps))
    single = f"""            for (; ox < {out_w}; ++ox, src += {stride_w}, out += {channels}) {{
                int32_t acc0 = b;
{single_taps}
                *out = {requantize.format(acc="acc0")};
            }}"""
    body = f"""    int8_t *plane = scratch;
    memset(plane, (int8_t)(-input_offset), {plane_rows * plane_cols + 4});
    for (int32_t c = 0; c < {channels}; ++c) {{
        const int8_t *w = filter + c;
{"" if row_window else _fill_plane(spec, plane_cols)}{weights}
        const int32_t b = bias[c];
        const ek_scale_t scale = ek_scale(multiplier[c], shift[c]);
        int8_t *out = output + c;
        for (int32_t oy = 0; oy < {out_h}; ++oy) {{
{_fill_row_window(spec, plane_rows, plane_cols) if row_window else ""}            const int8_t *src = plane{"" if row_window else f" + oy * {stride_h * plane_cols}"};
            int32_t ox = 0;
{pairs}{single}
        }}
    }}"""
    return mac_kernel_source("depthwise_conv2d", spec, narrow, body, depthwise_scratch_bytes(spec, row_window),
                             clamp=clamp, lean=lean)


def depthwise_c4_supported(spec) -> bool:
    """3x3 windows, stride 1 or 2 (the same both ways), no dilation, depth multiplier 1."""
    window = spec.window
    return (spec.depth_multiplier == 1 and window.kernel == (3, 3) and window.dilation == (1, 1)
            and window.stride in ((1, 1), (2, 2)))


#: the narrowest stride-1 output (pixels per row) that gets the dsp_c4 kernel by default: below it the
#: per-row work (window rows copied and widened, a step for the last pixels) costs more than the planes of
#: the one-channel kernel. Measured on cortex-m7 (one ReLU layer in QEMU, instructions per MAC, dsp vs
#: dsp_c4): 7x7x192 3.53 vs 3.01, 6x6x128 3.58 vs 3.18, 25x5x64 (DS-CNN's) 3.51 vs 3.19, 4x4x128 3.67 vs
#: 3.79, 3x3x256 3.85 vs 4.58; stride 2 gains even at 3 pixels (6x6x128, ReLU6: 6.57 vs 6.25)
C4_MIN_STRIDE1_WIDTH = 5


def depthwise_c4_default(spec) -> bool:
    """Whether kernel selection gives ``spec`` the dsp_c4 kernel by default (``--tune`` measures it anyway
    wherever it runs): supported, and stride 2 or at least ``C4_MIN_STRIDE1_WIDTH`` output pixels a row."""
    return depthwise_c4_supported(spec) and (spec.window.stride[1] == 2
                                             or spec.output_shape[1] >= C4_MIN_STRIDE1_WIDTH)


def _c4_pairs(spec) -> int:
    """Pixel pairs per window row: the last output pixel's window reads pairs up to (out_w - 1) * stride / 2 + 1."""
    return (spec.output_shape[1] - 1) * spec.window.stride[1] // 2 + 2


def depthwise_c4_scratch_bytes(spec) -> int:
    """The group's 24 weight words, then three window rows of four words (channels) per pixel pair."""
    return 4 * (24 + 3 * 4 * _c4_pairs(spec))


@lru_cache(maxsize=None)
def depthwise_conv2d_c4_kernel(spec, narrow: bool = False, clamp: str = "any", lean: bool = False) -> KernelSource:
    """Depthwise 3x3 conv2d, stride 1 or 2, four channels at a time (``ek_dw4_group`` in ek_mac_dsp.h,
    which says how): a group of four channels runs output row by output row through a ring of its three
    input rows, widened to int16 planes as they are copied in (scratch of ``depthwise_c4_scratch_bytes``),
    a last group of C % 4 channels the same way; the flash keeps the int8 filter. It writes each output row after copying the input rows its windows read, so it may write over
    its input like the row-window kernel (``DepthwiseConv2d.channelwise_overwrite_ok``). ``lean``
    schedules keep the one-channel row window (smaller scratch; ``variants.KernelChoice.variants``)."""
    if not depthwise_c4_supported(spec):
        raise ValueError(f"the dsp_c4 depthwise kernel needs a 3x3 window, stride 1 or 2, no dilation and depth "
                         f"multiplier 1, got {spec}")
    if lean:
        raise ValueError("the dsp_c4 depthwise kernel has no scratch-lean form")
    (height, width, channels), (out_h, out_w, _) = spec.input_shape, spec.output_shape
    top, left = spec.window.padding[0], spec.window.padding[1]
    shape = (f"{{{height}, {width}, {channels}, {out_h}, {out_w}, {spec.window.stride[0]}, {top}, {left}, "
             f"{_c4_pairs(spec)}}}")
    tail = "" if channels % 4 == 0 else (
        f"\n    ek_dw4_group(input, filter, &q, output, words, pad4, {channels - channels % 4}, {channels % 4}, shape);")
    body = f"""    {_REQUANT}
    const ek_dw4_shape_t shape = {shape};
    const int32_t pad4 = (int32_t)((uint32_t)(uint8_t)(int8_t)(-input_offset) * 0x01010101u);
    int32_t *words = (int32_t *)(void *)scratch;
    for (int32_t c = 0; c < {channels - channels % 4}; c += 4) {{
        ek_dw4_group(input, filter, &q, output, words, pad4, c, 4, shape);
    }}{tail}"""
    return mac_kernel_source("depthwise_conv2d", spec, narrow, body, depthwise_c4_scratch_bytes(spec),
                             clamp=clamp, variant=VARIANT_C4)


def fold_input_offset(bias: np.ndarray, weight: np.ndarray, channel_axis: int, input_offset: int) -> np.ndarray:
    """``bias + input_offset * sum(weights of each output channel)`` as int32, wrapping like the kernels' sums."""
    axes = tuple(axis for axis in range(weight.ndim) if axis != channel_axis)
    folded = bias.astype(np.int64) + np.int64(input_offset) * weight.astype(np.int64).sum(axis=axes)
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
