/* edgekit's Helium (MVE) depthwise convolution micro-kernels (cortex-m55), depth multiplier 1.
 *
 * The generated kernels (edgekit/codegen/kernels/depthwise_mve.py) include ek_mac_dsp.h with EK_MVE 1
 * (arm_mve.h, the clamp and requantization types, EK_NARROW_ACC) and then this header, and call these
 * always-inline routines with compile-time constant shapes, so gcc specialises every loop.
 *
 * Vectors run across channels. Group by group of 16 channels, the input rows that the windows of one
 * output row read are copied into a ring of rows in scratch (one 16-byte load and store a pixel),
 * padding columns and padding rows set to the input zero point. Every window then lies inside the ring,
 * and neighbouring pixels sit 16 bytes apart, within the immediate offset of one load. Each block of 4
 * channels of the group then runs: VLDRB.S32 loads a pixel's 4 channels (or a filter tap's 4 values)
 * sign-extended into int32 lanes, VMUL + VADD accumulate them per lane (Helium's only vector-by-vector
 * integer multiply-accumulate form), and each call computes up to 4 output pixels of one output row,
 * so the 4 accumulators share each tap's vector. A last group or block of a channel count that is not
 * a multiple of 16 or 4 copies only its channels, computes whatever the other lanes hold, and stores
 * only its channels (VCTP-predicated loads and stores).
 *
 * Arithmetic is TFLite's, bit for bit (the int8 reference in edgekit/ops/depthwise_conv2d.py):
 * - the input offset is folded into the bias at compile time, so the loops multiply raw int8 values;
 *   padding holds the input zero point (-input_offset), whose offset-corrected value is 0; int32 sums
 *   wrap as TFLite's do;
 * - requantization is MultiplyByQuantizedMultiplier with its double rounding: a left shift (VSHL,
 *   wrapping as the reference's int32 product does), SaturatingRoundingDoublingHighMul, which is
 *   VQRDMULH exactly (its (2ab + 2^31) >> 32 rounds as gemmlowp's sign-dependent nudge does, and it
 *   saturates the same single case), then RoundingDivideByPOT, which rounds half away from zero where
 *   VRSHL rounds half up: x - 1 for a negative x (a right shift only) turns VRSHL's
 *   (x + 2^(e-1)) >> e into gemmlowp's (x - 1 + 2^(e-1)) >> e; a saturating subtraction keeps INT32_MIN,
 *   whose quotient is exact either way. The narrow form (EK_NARROW_ACC, see ek_mac_dsp.h: every shift
 *   is a right shift, accumulators within +-2^30) needs neither the left shift nor the saturation;
 * - then the output offset and the activation clamp (compiled in where mac_dsp.clamp_kind knows it).
 */
#ifndef EK_DEPTHWISE_MVE_H
#define EK_DEPTHWISE_MVE_H
#include <arm_mve.h>

/* Output pixels per call at most (4 accumulators, a filter vector and an input vector in Q0-Q7). */
#define EK_DW_PIXELS 4
/* Channels a ring pixel holds: one 16-byte load or store copies a pixel's channel group. */
#define EK_DW_GROUP 16

EK_INLINE int32x4_t ek_dw_load_words(const int32_t *p, int32_t tail)
{
    return tail ? vldrwq_z_s32(p, vctp32q((uint32_t)tail)) : vldrwq_s32(p);
}

/* The requantization of 4 channels (`tail` 1-3: of the first `tail`, zeros after them). */
typedef struct {
    int32x4_t multiplier, left, right; /* left: max(shift, 0); right: min(shift, 0), VRSHL's count */
} ek_dw_quant_t;

EK_INLINE ek_dw_quant_t ek_dw_quant(const ek_requant_t *q, int32_t c, int32_t tail)
{
    ek_dw_quant_t s;
    const int32x4_t shift = ek_dw_load_words(q->shift + c, tail);
    s.multiplier = ek_dw_load_words(q->multiplier + c, tail);
#if EK_NARROW_ACC
    s.left = vdupq_n_s32(0);
    s.right = shift; /* every shift is a right shift */
#else
    const int32x4_t negative = vshrq_n_s32(shift, 31);
    s.left = vbicq_s32(shift, negative); /* max(shift, 0) */
    s.right = vandq_s32(shift, negative); /* min(shift, 0) */
#endif
    return s;
}

/* TFLite's MultiplyByQuantizedMultiplier of 4 accumulators (see the top of this file); `ties` 0: a
 * negative value that lies exactly halfway may round up instead of away from zero (the caller clamps
 * every value <= 0 to the same output). */
EK_INLINE int32x4_t ek_dw_rescale(int32x4_t acc, const ek_dw_quant_t *s, int32_t ties)
{
#if EK_NARROW_ACC
    const int32x4_t high = vqrdmulhq_s32(acc, s->multiplier);
    return vrshlq_s32(ties ? vaddq_s32(high, vshrq_n_s32(high, 31)) : high, s->right);
#else
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(acc, s->left), s->multiplier);
    /* -1 where high < 0 and the shift is a right shift (right < 0: its sign bit is set) */
    const int32x4_t fix = vshrq_n_s32(vandq_s32(high, s->right), 31);
    return vrshlq_s32(ties ? vqaddq_s32(high, fix) : high, s->right);
#endif
}

/* Requantize 4 accumulators, add the output offset, clamp and store the int8 results at out (`tail`:
 * only the first `tail`). An upper bound known to be 127 saturates by a saturating shift up and back
 * (which also clamps at -128). A lower bound that is the output zero point (EK_RELU, a fused ReLU or
 * ReLU6 whose top lies beyond int8, mac_dsp.clamp_kind "relu") takes every value <= 0 to it, however
 * a negative tie rounded: there VQSHLU #0 clamps at 0 before the offset, and the fix-up goes. */
EK_INLINE void ek_dw_store(int8_t *out, int32x4_t acc, const ek_dw_quant_t *s, ek_clamp_t clamp, int32_t tail)
{
    int32x4_t y;
#if EK_RELU
    y = vreinterpretq_s32_u32(vqshluq_n_s32(ek_dw_rescale(acc, s, 0), 0));
    y = vshrq_n_s32(vqshlq_n_s32(vaddq_n_s32(y, clamp.output_offset), 24), 24);
#else
    y = vaddq_n_s32(ek_dw_rescale(acc, s, 1), clamp.output_offset);
    if (__builtin_constant_p(clamp.act_max) && clamp.act_max == 127) {
        y = vshrq_n_s32(vqshlq_n_s32(y, 24), 24);
        if (!(__builtin_constant_p(clamp.act_min) && clamp.act_min == -128)) {
            y = vmaxq_s32(y, vdupq_n_s32(clamp.act_min));
        }
    } else {
        /* the bounds duplicated for each store: gcc would keep them in two vector registers across the
         * loops and spill accumulators instead */
        __asm__("" : "+r"(clamp.act_min), "+r"(clamp.act_max));
        y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(clamp.act_min)), vdupq_n_s32(clamp.act_max));
    }
#endif
    if (tail) {
        vstrbq_p_s32(out, y, vctp32q((uint32_t)tail));
    } else {
        vstrbq_s32(out, y);
    }
}

/* Input row `src` (width pixels, `channels` apart) of one channel group into ring row `dst`: 16 bytes a
 * pixel, of which the group's `count` channels are copied (the others keep what they held); all `pad`
 * for a row outside the input (`inside` 0). */
EK_INLINE void ek_dw_copy_row(int8_t *dst, const int8_t *src, int32_t inside, int32_t width, int32_t channels,
                              int8_t pad, int32_t count)
{
    if (!inside) {
        memset(dst, pad, (size_t)(EK_DW_GROUP * width));
        return;
    }
    if (count == EK_DW_GROUP) {
        EK_UNROLL4 for (int32_t x = 0; x < width; ++x) {
            vstrbq_s8(dst + EK_DW_GROUP * x, vldrbq_s8(src + x * channels));
        }
    } else {
        const mve_pred16_t lanes = vctp8q((uint32_t)count);
        EK_UNROLL4 for (int32_t x = 0; x < width; ++x) {
            vstrbq_p_s8(dst + EK_DW_GROUP * x, vldrbq_z_s8(src + x * channels, lanes), lanes);
        }
    }
}

/* The static geometry of one depthwise layer. */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t tap_step;   /* ring bytes between kernel columns: 16 * dilation_w */
    int32_t pixel_step; /* ring bytes between neighbouring output pixels: 16 * stride_w */
    int32_t centre;     /* the loads' offsets are taken from row + centre, so they fit VLDRB's +-127 */
    int32_t channels;   /* C: output bytes between pixels */
} ek_dw_shape_t;

/* `pixels` (1 to EK_DW_PIXELS) neighbouring output pixels of one output row, channels c..c+3 (`tail`:
 * see ek_dw_store): rows[ky] + x is kernel row ky's first tap of the first pixel in the ring, at the
 * block's channels; w the block's filter (tap t's 4 values at w + 4 t, depthwise_mve.block_filter), out
 * the first output.
 *
 * gcc cannot see through the row pointers and the filter pointer, so every load is one VLDRB with an
 * immediate offset from them (it would otherwise hoist a register or a stack slot per tap out of the
 * pixel loop); the bias and the requantization are loaded for each call from c, hidden the same way,
 * as the loop has no vector register left to keep them. */
EK_INLINE void ek_dw_pixels(const int8_t *const *rows, int32_t x, const int8_t *w, ek_dw_shape_t g, int32_t pixels,
                            const ek_requant_t *q, int32_t c, int8_t *out, int32_t tail)
{
    int32x4_t acc[EK_DW_PIXELS];
    __asm__("" : "+r"(c), "+r"(w));
    const int32x4_t bias = ek_dw_load_words(q->bias + c, tail);
    _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
        acc[p] = bias;
    }
    _Pragma("GCC unroll 16") for (int32_t ky = 0; ky < g.kernel_h; ++ky) {
        const int8_t *row = rows[ky] + x + g.centre;
        __asm__("" : "+r"(row));
        _Pragma("GCC unroll 16") for (int32_t kx = 0; kx < g.kernel_w; ++kx) {
            if (g.pixel_step != g.tap_step) {
                /* no load shared with the next tap: gcc would keep (and spill) the vectors a stride > 1
                 * gives two taps, where loading them again costs one VLDRB each */
                __asm__("" : "+r"(row));
            }
            const int32x4_t weight = vldrbq_s32(w + 4 * (ky * g.kernel_w + kx));
            _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
                const int32x4_t value = vldrbq_s32(row + (kx * g.tap_step + p * g.pixel_step - g.centre));
                acc[p] = vaddq_s32(acc[p], vmulq_s32(value, weight));
                /* keep each product next to its sum: gcc would otherwise make every product first and
                 * spill them (its expansion of single-use expressions) */
                __asm__("" : "+w"(acc[p]));
            }
        }
    }
    const ek_dw_quant_t s = ek_dw_quant(q, c, tail);
    _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
        ek_dw_store(out + p * g.channels, acc[p], &s, q->clamp, tail);
    }
}

#endif
