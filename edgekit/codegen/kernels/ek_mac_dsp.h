/* edgekit's multiply-accumulate micro-kernels for the Cortex-M DSP extension (cortex-m4, -m7, -m55).
 *
 * The generated DSP kernels (edgekit/codegen/kernels/mac_dsp.py) are thin functions that call these
 * always-inline routines with compile-time constant shapes, so gcc specialises every loop.
 *
 * Arithmetic is TFLite's, bit for bit (see the int8 references in edgekit/ops):
 * - the input offset is folded into the bias at compile time (bias + input_offset * sum of the
 *   channel's weights), and padding is filled with the input zero point, whose offset-corrected
 *   value is 0, so the inner loops multiply raw int8 values; int32 sums wrap as TFLite's do;
 * - requantization is TFLite's MultiplyByQuantizedMultiplier with its double rounding
 *   (rounding doubling high multiply, then a rounding right shift), then the output offset and
 *   the activation clamp.
 * Four bytes are loaded with memcpy: an M7 tolerates an unaligned LDR but faults on an unaligned
 * LDRD/LDM, which pointer casts may produce.
 *
 * Without the DSP extension (the host, for the tests) SXTB16 and SMLAD are emulated in C, so
 * the same routines are checked bit for bit on the host and in QEMU.
 */
#ifndef EK_MAC_DSP_H
#define EK_MAC_DSP_H
#ifndef EK_NARROW_ACC
#define EK_NARROW_ACC 0
#endif
#ifndef EK_WEIGHTS_INT16
#define EK_WEIGHTS_INT16 0
#endif
#ifndef EK_MVE
#define EK_MVE 0
#endif
#ifndef EK_LEAN
#define EK_LEAN 0
#endif
#ifndef EK_RELU
#define EK_RELU 0
#endif
#ifndef EK_CHANNEL_TABLE
#define EK_CHANNEL_TABLE 0
#endif
#ifndef EK_DOUBLED
#define EK_DOUBLED 0
#endif
#include <stdint.h>
#include <string.h>

/* gcc's first scheduling pass (before register allocation) hoists the loads of a whole unrolled step
 * to its start and spills them: measured on the int8-weight 2x2 step, 314 stack accesses with it, 86
 * without. The kernels that include this header are compiled without it. */
#pragma GCC optimize("no-schedule-insns")

#define EK_INLINE static inline __attribute__((always_inline))
/* Unroll a copy loop four times: its compare and branch cost as much as its load and store. */
#define EK_UNROLL4 _Pragma("GCC unroll 4")

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Sign-extend bytes 0 and 2 (1 and 3 for the _ror8 form) into two int16 halves. */
EK_INLINE int32_t ek_sxtb16(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
EK_INLINE int32_t ek_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* acc + a.lo * b.lo + a.hi * b.hi (int16 halves). */
EK_INLINE int32_t ek_smlad(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* (a * b + 2^31) >> 32: the rounded high word of the int64 product. */
EK_INLINE int32_t ek_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* acc + a.lo * b.lo, and acc + a.hi * b.lo (int16 halves). */
EK_INLINE int32_t ek_smlabb(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
EK_INLINE int32_t ek_smlatb(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* acc + a.lo * b.hi (int16 halves). */
EK_INLINE int32_t ek_smlabt(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
#else
EK_INLINE int32_t ek_sxtb16(int32_t x)
{
    return (int32_t)(((uint32_t)(int32_t)(int8_t)(x & 0xFF) & 0xFFFFu) | ((uint32_t)(int8_t)((x >> 16) & 0xFF) << 16));
}
EK_INLINE int32_t ek_sxtb16_ror8(int32_t x)
{
    return ek_sxtb16((int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
EK_INLINE int32_t ek_smlad(int32_t a, int32_t b, int32_t acc)
{
    int32_t lo = (int32_t)(int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF);
    int32_t hi = (a >> 16) * (b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
EK_INLINE int32_t ek_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + (1LL << 31)) >> 32);
}
EK_INLINE int32_t ek_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF)));
}
EK_INLINE int32_t ek_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((a >> 16) * (int16_t)(b & 0xFFFF)));
}
EK_INLINE int32_t ek_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xFFFF) * (b >> 16)));
}
#endif

/* Two int16 values in one word: lo in bits 0-15, hi in bits 16-31 (SMLAD's operand pairs). */
EK_INLINE int32_t ek_pack_s16x2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

EK_INLINE int32_t ek_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* TFLite's MultiplyByQuantizedMultiplier (multiplier >= 0) of one output channel, decoded once for
 * all the outputs that share it.
 *
 * General form: left shift, then (int64 product + 2^30) >> 31, which equals gemmlowp's
 * SaturatingRoundingDoublingHighMul for every multiplier >= 0 (its truncating division with a
 * sign-dependent nudge rounds the same way; the only saturating case needs multiplier INT32_MIN),
 * then gemmlowp's RoundingDivideByPOT (round half away from zero).
 *
 * Narrow form (the kernel defines EK_NARROW_ACC to 1 before including this header): the code
 * generator checked that every accumulator, bias included, stays within +-2^30 and that every shift
 * is a right shift of at least 1. Then SMMULR(2 acc, m) = (2 acc m + 2^31) >> 32 is the same high
 * product; it stays within +-2^30, so h - (h < 0) cannot overflow, and rounding half away from zero
 * by 2^r is (((h - (h < 0)) >> (r - 1)) + 1) >> 1. */
#if EK_NARROW_ACC
typedef struct {
    int32_t multiplier, right_minus_one;
} ek_scale_t;

EK_INLINE ek_scale_t ek_scale(int32_t multiplier, int32_t shift)
{
    ek_scale_t scale;
    scale.multiplier = multiplier;
    scale.right_minus_one = -shift - 1;
    return scale;
}

EK_INLINE int32_t ek_rescale(int32_t acc, ek_scale_t scale)
{
    const int32_t high = ek_smmulr(acc * 2, scale.multiplier);
    return (((high + (high >> 31)) >> scale.right_minus_one) + 1) >> 1;
}
#else
typedef struct {
    int32_t multiplier, left, right, mask;
} ek_scale_t;

EK_INLINE ek_scale_t ek_scale(int32_t multiplier, int32_t shift)
{
    ek_scale_t scale;
    scale.multiplier = multiplier;
    scale.left = shift & ~(shift >> 31); /* max(shift, 0) */
    scale.right = scale.left - shift;    /* max(-shift, 0) */
    scale.mask = (int32_t)((1u << scale.right) - 1u);
    return scale;
}

EK_INLINE int32_t ek_rescale(int32_t acc, ek_scale_t scale)
{
    const int32_t x = (int32_t)((uint32_t)acc << scale.left);
    const int32_t high = (int32_t)(((int64_t)x * scale.multiplier + (1LL << 30)) >> 31);
    const int32_t threshold = (scale.mask >> 1) - (high >> 31); /* + 1 when high < 0 */
    return (high >> scale.right) + ((high & scale.mask) > threshold);
}
#endif

/* TFLite's RoundingDivideByPOT(x, right) for 0 <= right <= 31 and |x| < 2^30, decoded once for many x:
 * x itself for right 0, else (x - (x < 0) + 2^(right - 1)) >> right (no overflow within the bound). */
typedef struct {
    int32_t negative, round, right;
} ek_pot_t;

EK_INLINE ek_pot_t ek_pot(int32_t right)
{
    ek_pot_t pot;
    pot.negative = right > 0 ? -1 : 0;
    pot.round = (int32_t)((1u << right) >> 1);
    pot.right = right;
    return pot;
}

EK_INLINE int32_t ek_divide_pot(int32_t x, ek_pot_t pot)
{
    return (x + ((x >> 31) & pot.negative) + pot.round) >> pot.right;
}

/* SSAT and USAT (Armv7E-M, Armv8-M Mainline and later); the host emulates them in C. */
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define EK_HAVE_SAT 1
#else
#define EK_HAVE_SAT 0
#endif

/* The layer's output offset and fused activation clamp. */
typedef struct {
    int32_t output_offset, act_min, act_max;
} ek_clamp_t;

/* result -> int8: the activation clamp. An upper bound known at compile time to be 127 (the kernels
 * compile in mac_dsp.clamp_kind) is one SSAT, which also clamps at -128; then the lower bound, unless
 * it is known to be -128. ek_output: rescale acc, add the output offset, clamp. */
EK_INLINE int8_t ek_output_clamp(int32_t result, ek_clamp_t clamp)
{
#if EK_HAVE_SAT
    if (__builtin_constant_p(clamp.act_max) && clamp.act_max == 127) {
        __asm__("ssat %0, #8, %1" : "=r"(result) : "r"(result));
        if (!(__builtin_constant_p(clamp.act_min) && clamp.act_min == -128)) {
            result = result < clamp.act_min ? clamp.act_min : result;
        }
        return (int8_t)result;
    }
#endif
    result = result < clamp.act_min ? clamp.act_min : result;
    result = result > clamp.act_max ? clamp.act_max : result;
    return (int8_t)result;
}

EK_INLINE int8_t ek_output(int32_t acc, ek_scale_t scale, ek_clamp_t clamp)
{
    return ek_output_clamp(ek_rescale(acc, scale) + clamp.output_offset, clamp);
}

/* clamp(x >> 1, -128, 127): one SSAT with a shifted operand on the DSP cores. */
EK_INLINE int32_t ek_ssat8_half(int32_t x)
{
#if EK_HAVE_SAT
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(x) : "r"(x));
    return x;
#else
    x >>= 1;
    return x < -128 ? -128 : x > 127 ? 127 : x;
#endif
}

/* max(x, 0): one USAT (to 31 bits) on the DSP cores, where gcc would shift and BIC. */
EK_INLINE int32_t ek_relu(int32_t x)
{
#if EK_HAVE_SAT
    __asm__("usat %0, #31, %1" : "=r"(x) : "r"(x));
    return x;
#else
    return x < 0 ? 0 : x;
#endif
}

/* ek_output for the conv2d and fully_connected kernels (ek_gemm). With narrow accumulators and an upper
 * clamp known to be 127 (mac_dsp.clamp_kind "full", "upper", "relu") the output offset goes in before
 * the last halving, so that one SSAT with a shifted operand does the halving and the clamp:
 * zp + ((w + 1) >> 1) = (2 zp + 1 + w) >> 1, where w = (high - (high < 0)) >> (right - 1) is the narrow
 * form's first shift. The "relu" kernels (EK_RELU: the lower clamp is the output zero point, a fused
 * ReLU or ReLU6) also drop the lower clamp and the sign correction: TFLite's rounding of a negative high
 * product is at most 0 and lands on the clamp either way, so w = max(high >> (right - 1), 0) gives the
 * same outputs. The EK_DOUBLED kernels (int16 weights and bias doubled at compile time) accumulate
 * 2 acc, which the narrow form's SMMULR takes as it is. */
EK_INLINE int8_t ek_gemm_output(int32_t acc, ek_scale_t scale, ek_clamp_t clamp)
{
#if EK_NARROW_ACC
    if (__builtin_constant_p(clamp.act_max) && clamp.act_max == 127) {
        const int32_t high = ek_smmulr(EK_DOUBLED ? acc : acc * 2, scale.multiplier);
        const int32_t offset = 2 * clamp.output_offset + 1;
#if EK_RELU
        return (int8_t)ek_ssat8_half(offset + ek_relu(high >> scale.right_minus_one));
#else
        const int32_t result = ek_ssat8_half(offset + ((high + (high >> 31)) >> scale.right_minus_one));
        if (__builtin_constant_p(clamp.act_min) && clamp.act_min == -128) {
            return (int8_t)result;
        }
        return (int8_t)(result < clamp.act_min ? clamp.act_min : result);
#endif
    }
#endif
    return ek_output(EK_DOUBLED ? acc >> 1 : acc, scale, clamp);
}

/* One output: TFLite's requantization of acc with (multiplier, shift), output offset and clamp. */
EK_INLINE int8_t ek_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                               int32_t act_min, int32_t act_max)
{
    const ek_clamp_t clamp = {output_offset, act_min, act_max};
    return ek_output(acc, ek_scale(multiplier, shift), clamp);
}

/* The quantization of one MAC layer's output channels: bias (with the input offset folded in),
 * multiplier and shift arrays, or (EK_CHANNEL_TABLE, narrow conv2d and fully_connected kernels) one
 * table, per pair of channels: bias, bias, multiplier, multiplier, right shift - 1, right shift - 1
 * (mac_dsp.channel_table), which one pointer reads at constant offsets where three arrays cost a
 * base pointer reloaded from the stack and an indexed load per value (measured in the 2x2 loop). */
#if EK_CHANNEL_TABLE
typedef struct {
    const int32_t *channels;
    ek_clamp_t clamp;
} ek_requant_t;
#else
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    ek_clamp_t clamp;
} ek_requant_t;
#endif

/* Output channel c + i's bias and decoded scale (c even, i 0 or 1). */
EK_INLINE int32_t ek_channel_bias(const ek_requant_t *q, int32_t c, int32_t i)
{
#if EK_CHANNEL_TABLE
    return q->channels[3 * c + i];
#else
    return q->bias[c + i];
#endif
}

EK_INLINE ek_scale_t ek_channel_scale(const ek_requant_t *q, int32_t c, int32_t i)
{
#if EK_CHANNEL_TABLE
    ek_scale_t scale;
    scale.multiplier = q->channels[3 * c + 2 + i];
    scale.right_minus_one = q->channels[3 * c + 4 + i];
    return scale;
#else
    return ek_scale(q->multiplier[c + i], q->shift[c + i]);
#endif
}

/* Inputs and weights of the DSP (non-Helium) kernels.
 *
 * Inputs: each input row (a pixel's k values) is widened once into int16 in word-aligned scratch
 * (ek_widen): groups of 4 in SMLAD order (x0, x2), (x1, x3) (the halves of SXTB16 and SXTB16 ror 8
 * of the bytes x0..x3), the last partial group in order, zero-padded; the two pixels of a 2-pixel
 * block interleaved group by group, so one pointer reads both. The inner loop then loads words and
 * multiplies: nothing is re-widened for each output channel.
 * Weights: int8 by default, each row k bytes, SXTB16'd in the loop (2 pixels x 2 channels: 4 LDRD/LDR,
 * 4 SXTB16, 8 SMLAD per 16 MACs). The _w16 kernels define EK_WEIGHTS_INT16 to 1 before including
 * this header: weights widened at compile time like the inputs, rows rounded up to a multiple of 4
 * (ek_filter_row), the rows of each pair of output channels (0-1, 2-3...) interleaved group by group,
 * a last odd channel's row plain (4 LDRD and 8 SMLAD per 16 MACs; twice the weight flash).
 * mac_dsp.widen_weights writes that layout. The Helium kernels (EK_MVE) read plain int8 rows. */
#if EK_WEIGHTS_INT16
typedef int16_t ek_weight_t;
#else
typedef int8_t ek_weight_t;
#endif

#if EK_MVE
typedef int8_t ek_input_t;

/* Values per input row and per filter row. */
EK_INLINE int32_t ek_row(int32_t k)
{
    return k;
}
EK_INLINE int32_t ek_filter_row(int32_t k)
{
    return k;
}

/* Helium (the _mve kernels, cortex-m55): VMLADAVA multiplies 16 int8 pairs and adds them to a scalar
 * accumulator; the K tail is a predicated load that reads zeros beyond k (and no memory). */
#include <arm_mve.h>

EK_INLINE void ek_dot_2x2(const int8_t *a, const ek_weight_t *w0, const ek_weight_t *w1, int32_t k, int32_t acc[4])
{
    const int8_t *b = a + k;
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    for (int32_t i = 0; i < k; i += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(k - i));
        const int8x16_t xa = vldrbq_z_s8(a + i, lanes), xb = vldrbq_z_s8(b + i, lanes);
        const int8x16_t v0 = vldrbq_z_s8(w0 + i, lanes), v1 = vldrbq_z_s8(w1 + i, lanes);
        a0 = vmladavaq_s8(a0, xa, v0);
        a1 = vmladavaq_s8(a1, xa, v1);
        b0 = vmladavaq_s8(b0, xb, v0);
        b1 = vmladavaq_s8(b1, xb, v1);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}

EK_INLINE int32_t ek_dot_1x1(const int8_t *a, const ek_weight_t *w, int32_t k, int32_t acc)
{
    for (int32_t i = 0; i < k; i += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(k - i));
        acc = vmladavaq_s8(acc, vldrbq_z_s8(a + i, lanes), vldrbq_z_s8(w + i, lanes));
    }
    return acc;
}

/* acc[2 * pixel + channel] += the dot products of `pixels` (1 or 2) int8 input rows at a (row b = a + k)
 * and `channels` (1 or 2) filter rows at w (the second at w + k). */
EK_INLINE void ek_block(const ek_input_t *a, const ek_weight_t *w, int32_t k, int32_t pixels, int32_t channels,
                        int32_t acc[4])
{
    if (pixels == 2 && channels == 2) {
        ek_dot_2x2(a, w, w + k, k, acc);
        return;
    }
    acc[0] = ek_dot_1x1(a, w, k, acc[0]);
    if (channels == 2) {
        acc[1] = ek_dot_1x1(a, w + k, k, acc[1]);
    }
    if (pixels == 2) {
        acc[2] = ek_dot_1x1(a + k, w, k, acc[2]);
    }
}
#else
#if EK_LEAN
typedef int8_t ek_input_t; /* int8 rows, widened in the loop (see the EK_LEAN ek_block) */
#else
typedef int16_t ek_input_t;
#endif

/* Values per widened input row, and per filter row. */
EK_INLINE int32_t ek_row(int32_t k)
{
    return (k + 3) & ~3;
}
EK_INLINE int32_t ek_filter_row(int32_t k)
{
    return EK_WEIGHTS_INT16 ? ek_row(k) : k;
}

/* k int8 values widened as above, group g at dst + g * stride int16 values (stride 4: a plain row;
 * 8: one pixel of an interleaved pair). Written as words only, as ek_block reads them (one type for
 * the buffer's accesses, so gcc's aliasing rules keep their order). */
EK_INLINE void ek_widen(const int8_t *src, ek_input_t *dst, int32_t k, int32_t stride)
{
    int32_t *words = (int32_t *)(void *)dst;
    int32_t i = 0;
    EK_UNROLL4 for (; i + 4 <= k; i += 4, words += stride / 2) {
        const int32_t v = ek_read_s8x4(src + i);
        words[0] = ek_sxtb16(v);
        words[1] = ek_sxtb16_ror8(v);
    }
    if (i < k) { /* the partial group, in order, zero-padded */
        words[0] = ek_pack_s16x2(src[i], i + 1 < k ? src[i + 1] : 0);
        words[1] = ek_pack_s16x2(i + 2 < k ? src[i + 2] : 0, 0);
    }
}

/* Filter values per group step of `channels` rows (see ek_block). */
EK_INLINE int32_t ek_filter_step(int32_t channels)
{
    return EK_WEIGHTS_INT16 ? 4 * channels : 4;
}

/* The group of filter row `channel` (0 or 1) at w as two SMLAD operands; `tail`: the values of a
 * last partial group (0: a whole one). */
EK_INLINE void ek_weight_group(const ek_weight_t *w, int32_t channel, int32_t channels, int32_t k, int32_t tail,
                               int32_t *even, int32_t *odd)
{
#if EK_WEIGHTS_INT16
    const int32_t *words = (const int32_t *)(const void *)w + 2 * channel;
    (void)channels;
    (void)k;
    (void)tail;
    *even = words[0];
    *odd = words[1];
#else
    const int8_t *p = w + channel * k;
    (void)channels;
    if (tail == 0) {
        const int32_t v = ek_read_s8x4(p);
        *even = ek_sxtb16(v);
        *odd = ek_sxtb16_ror8(v);
    } else { /* in order, as ek_widen's partial group; no read beyond the row */
        *even = ek_pack_s16x2(p[0], tail > 1 ? p[1] : 0);
        *odd = ek_pack_s16x2(tail > 2 ? p[2] : 0, 0);
    }
#endif
}

/* One group of 4: x at the group's first pixel, w at its filter group (ek_weight_group). */
EK_INLINE void ek_group(const int32_t *x, const ek_weight_t *w, int32_t k, int32_t pixels, int32_t channels,
                        int32_t tail, int32_t acc[4])
{
    int32_t even, odd;
    ek_weight_group(w, 0, channels, k, tail, &even, &odd);
    acc[0] = ek_smlad(x[1], odd, ek_smlad(x[0], even, acc[0]));
    if (pixels == 2) {
        acc[2] = ek_smlad(x[3], odd, ek_smlad(x[2], even, acc[2]));
    }
    if (channels == 2) {
        ek_weight_group(w, 1, channels, k, tail, &even, &odd);
        acc[1] = ek_smlad(x[1], odd, ek_smlad(x[0], even, acc[1]));
        if (pixels == 2) {
            acc[3] = ek_smlad(x[3], odd, ek_smlad(x[2], even, acc[3]));
        }
    }
}

#if EK_LEAN
/* The scratch-lean form (EK_LEAN, kernels of schedules that minimise SRAM): `pixels` (1 or 2) int8
 * input rows at a (row b = a + k), each group of 4 widened in the loop for every pair of output
 * channels instead of once into scratch; the weights and the group arithmetic as below. */
EK_INLINE void ek_int8_group(const int8_t *a, int32_t i, int32_t tail, int32_t x[2])
{
    if (tail == 0) {
        const int32_t v = ek_read_s8x4(a + i);
        x[0] = ek_sxtb16(v);
        x[1] = ek_sxtb16_ror8(v);
    } else { /* in order, as ek_widen's partial group; no read beyond the row */
        x[0] = ek_pack_s16x2(a[i], tail > 1 ? a[i + 1] : 0);
        x[1] = ek_pack_s16x2(tail > 2 ? a[i + 2] : 0, 0);
    }
}

EK_INLINE void ek_block(const ek_input_t *a, const ek_weight_t *w, int32_t k, int32_t pixels, int32_t channels,
                        int32_t acc[4])
{
    const int32_t w_step = ek_filter_step(channels);
    int32_t sums[4] = {acc[0], acc[1], acc[2], acc[3]};
    int32_t i = 0;
    for (; i + 4 <= k; i += 4, w += w_step) {
        int32_t x[4];
        ek_int8_group(a, i, 0, x);
        if (pixels == 2) {
            ek_int8_group(a + k, i, 0, x + 2);
        }
        ek_group(x, w, k, pixels, channels, 0, sums);
    }
    if (i < k) {
        int32_t x[4];
        ek_int8_group(a, i, k - i, x);
        if (pixels == 2) {
            ek_int8_group(a + k, i, k - i, x + 2);
        }
        ek_group(x, w, k, pixels, channels, k - i, sums);
    }
    for (int32_t j = 0; j < 4; ++j) {
        acc[j] = sums[j];
    }
}
#else
/* acc[2 * pixel + channel] += the dot products of `pixels` (1 or 2) widened input rows at a and
 * `channels` (1 or 2) filter rows at w, k values each (layouts above). The loop runs steps of
 * straight-line code with constant offsets, 8 groups each for the 2x2 block (gcc unrolls loops of a
 * constant trip count completely, but a partial unroll loses the constant), 2 for the rarer edge
 * blocks (an odd last pixel or channel), whose code size matters more than their speed. */
EK_INLINE void ek_block(const ek_input_t *a, const ek_weight_t *w, int32_t k, int32_t pixels, int32_t channels,
                        int32_t acc[4])
{
    const int32_t *x = (const int32_t *)(const void *)a;
    /* x is the same for every channel pair, so gcc would hoist a short row's loads out of the channel
     * loop and keep them in stack slots, one LDR each; hidden from it, they stay LDRDs from scratch */
    __asm__("" : "+r"(x));
    const int32_t whole = k / 4, x_step = 2 * pixels, w_step = ek_filter_step(channels);
    const int32_t per_step = pixels == 2 && channels == 2 ? 8 : 2;
    int32_t sums[4] = {acc[0], acc[1], acc[2], acc[3]};
    for (int32_t step = 0; step < whole / per_step; ++step) {
        _Pragma("GCC unroll 8") for (int32_t g = 0; g < per_step; ++g) {
            ek_group(x + x_step * g, w + w_step * g, k, pixels, channels, 0, sums);
        }
        x += x_step * per_step;
        w += w_step * per_step;
    }
    _Pragma("GCC unroll 8") for (int32_t g = 0; g < whole % per_step; ++g) {
        ek_group(x + x_step * g, w + w_step * g, k, pixels, channels, 0, sums);
    }
    if (k % 4) {
        const int32_t g = whole % per_step;
        ek_group(x + x_step * g, w + w_step * g, k, pixels, channels, k % 4, sums);
    }
    for (int32_t i = 0; i < 4; ++i) {
        acc[i] = sums[i];
    }
}
#endif /* EK_LEAN */
#endif

/* `pixels` (1 or 2) input rows at a (k values each: widened and interleaved by ek_widen, or int8 rows for
 * the Helium kernels) times every filter row ([n][ek_filter_row(k)] as above): the n requantized outputs of the
 * first pixel go to out, those of the second right after them. Output channels go two at a time (2x2
 * register blocking). */
EK_INLINE void ek_gemm(const ek_input_t *a, const ek_weight_t *filter, int32_t k, int32_t n, int32_t pixels,
                       const ek_requant_t *q, int8_t *out)
{
    const int32_t row = ek_filter_row(k);
    int8_t *out_a = out, *out_b = out + n;
    int32_t c = 0;
    for (; c + 2 <= n; c += 2) {
        const int32_t bias0 = ek_channel_bias(q, c, 0), bias1 = ek_channel_bias(q, c, 1);
        int32_t acc[4] = {bias0, bias1, bias0, bias1};
        ek_block(a, filter + c * row, k, pixels, 2, acc);
        ek_scale_t scale = ek_channel_scale(q, c, 0);
        out_a[c] = ek_gemm_output(acc[0], scale, q->clamp);
        if (pixels == 2) {
            out_b[c] = ek_gemm_output(acc[2], scale, q->clamp);
        }
        scale = ek_channel_scale(q, c, 1);
        out_a[c + 1] = ek_gemm_output(acc[1], scale, q->clamp);
        if (pixels == 2) {
            out_b[c + 1] = ek_gemm_output(acc[3], scale, q->clamp);
        }
    }
    if (c < n) {
        const int32_t bias0 = ek_channel_bias(q, c, 0);
        int32_t acc[4] = {bias0, 0, bias0, 0};
        ek_block(a, filter + c * row, k, pixels, 1, acc);
        const ek_scale_t scale = ek_channel_scale(q, c, 0);
        out_a[c] = ek_gemm_output(acc[0], scale, q->clamp);
        if (pixels == 2) {
            out_b[c] = ek_gemm_output(acc[2], scale, q->clamp);
        }
    }
}

#if !EK_CHANNEL_TABLE /* the dsp_c4 kernels read the bias, multiplier and shift arrays */
/* Depthwise 3x3, stride 1 or 2, four channels at a time (the dsp_c4 depthwise kernels, mac_dsp.py).
 *
 * NHWC keeps a pixel's channels together, so one word holds four channels of one pixel. A group of
 * four channels runs output row by output row through a *row window* in scratch: the three input rows
 * of the current output row's windows, widened to int16 once as they are copied in. Each window row
 * holds one plane per channel of the group, and word j of a plane is the channel's values at window
 * columns 2j and 2j + 1 as an int16 pair (column 0 is the left padding): of two input words (a pixel's
 * four channels each), PKHBT and PKHTB take channels 0-1 and 2-3 of both pixels, and SXTB16 and SXTB16
 * ror 8 of those give the four planes' word j. One SMLAD then multiplies two taps of one channel, and
 * the inner loop only loads and multiplies. Padding columns and rows hold the input zero point (its
 * offset-corrected value is 0), so the loops over output pixels have no border checks.
 * Weights: per channel and kernel row the int16 pairs (w0, w1) and (w1, w2), built in scratch once per
 * group from the int8 filter. At stride 1 pixel 2j sums (x0, x1).(w0, w1) + x2 w2 from words j, j + 1,
 * pixel 2j + 1 x1 w0 + (x2, x3).(w1, w2); at stride 2 pixel j sums (x0, x1).(w0, w1) + x2 w2 from words
 * j, j + 1. Four output pixels of one channel per step.
 * Narrow layers (EK_NARROW_ACC) accumulate 2 acc (doubled weights and bias), which the requantization
 * (ek_rescale) needs anyway, and fold its last rounding step into SSAT; the activation clamp then runs
 * on the step's four pixels at once (ek_clamp_s8x4).
 * In place: group g writes only its own channels, and output row r after copying the input rows its
 * windows read; a row is copied just before the first output row that reads it, as the row-window
 * kernel does (DepthwiseConv2d.channelwise_overwrite_ok). */

#define EK_DW4_SCALE (EK_NARROW_ACC ? 2 : 1)

/* Four bytes of one pixel's channels c.. (n of them present; the others the zero point, pad4). */
EK_INLINE int32_t ek_dw4_pixel(const int8_t *p, int32_t n, int32_t pad4)
{
    int32_t v = pad4;
    memcpy(&v, p, (size_t)n);
    return v;
}

/* The low halves of a and b in one word (PKHBT; gcc writes two instructions for the C), or with `top`
 * their high halves (PKHTB). */
EK_INLINE uint32_t ek_halves(int32_t a, int32_t b, int32_t top)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t r;
    if (top) {
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    } else {
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    }
    return r;
#else
    return top ? ((uint32_t)b & 0xFFFF0000u) | ((uint32_t)a >> 16) : ((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16);
#endif
}

/* Pixel pair j of a window row (planes of `pairs` words): v0, v1 the two pixels' words. */
EK_INLINE void ek_dw4_pair(int32_t *row, int32_t pairs, int32_t j, int32_t v0, int32_t v1)
{
    const int32_t low = (int32_t)ek_halves(v0, v1, 0), high = (int32_t)ek_halves(v0, v1, 1); /* channels 0-1, 2-3 */
    row[j] = ek_sxtb16(low);
    row[pairs + j] = ek_sxtb16_ror8(low);
    row[2 * pairs + j] = ek_sxtb16(high);
    row[3 * pairs + j] = ek_sxtb16_ror8(high);
}

/* Pixel pair j of input row `src` (already at channel c), checking the columns (a border pair). */
EK_INLINE void ek_dw4_border_pair(const int8_t *src, int32_t width, int32_t channels, int32_t left, int32_t pairs,
                                  int32_t n, int32_t pad4, int32_t j, int32_t *row)
{
    const int32_t x0 = 2 * j - left, x1 = x0 + 1;
    ek_dw4_pair(row, pairs, j, x0 >= 0 && x0 < width ? ek_dw4_pixel(src + x0 * channels, n, pad4) : pad4,
                x1 >= 0 && x1 < width ? ek_dw4_pixel(src + x1 * channels, n, pad4) : pad4);
}

/* Input row `src` (already at channel c) into a window row of `pairs` pixel pairs; columns outside the
 * input read the zero point. The pairs with both pixels inside run without checks. */
EK_INLINE void ek_dw4_row(const int8_t *src, int32_t width, int32_t channels, int32_t left, int32_t pairs,
                          int32_t n, int32_t pad4, int32_t *row)
{
    const int32_t first = (left + 1) / 2, last = (width + left) / 2 < pairs ? (width + left) / 2 : pairs;
    int32_t j = 0;
    for (; j < first; ++j) {
        ek_dw4_border_pair(src, width, channels, left, pairs, n, pad4, j, row);
    }
    const int8_t *p = src + (2 * j - left) * channels;
    EK_UNROLL4 for (; j < last; ++j, p += 2 * channels) {
        ek_dw4_pair(row, pairs, j, ek_dw4_pixel(p, n, pad4), ek_dw4_pixel(p + channels, n, pad4));
    }
    for (; j < pairs; ++j) {
        ek_dw4_border_pair(src, width, channels, left, pairs, n, pad4, j, row);
    }
}

/* The group's int16 tap pairs, times EK_DW4_SCALE: words[6 i + 2 ky] = (w0, w1), [.. + 1] = (w1, w2) of
 * channel c + i, kernel row ky. */
EK_INLINE void ek_dw4_weights(const int8_t *filter, int32_t channels, int32_t c, int32_t n, int32_t *words)
{
    for (int32_t i = 0; i < n; ++i) {
        for (int32_t ky = 0; ky < 3; ++ky) {
            const int8_t *w = filter + 3 * ky * channels + c + i;
            const int32_t w0 = w[0] * EK_DW4_SCALE, w1 = w[channels] * EK_DW4_SCALE, w2 = w[2 * channels] * EK_DW4_SCALE;
            words[6 * i + 2 * ky] = ek_pack_s16x2(w0, w1);
            words[6 * i + 2 * ky + 1] = ek_pack_s16x2(w1, w2);
        }
    }
}

/* One output channel's requantization, decoded once per output row. */
typedef struct {
    ek_scale_t scale;
    int32_t bias, offset; /* the bias times EK_DW4_SCALE; narrow: 1 + 2 * output offset */
} ek_dw4_channel_t;

EK_INLINE ek_dw4_channel_t ek_dw4_channel(const ek_requant_t *q, int32_t c)
{
    ek_dw4_channel_t channel;
    channel.scale = ek_scale(q->multiplier[c], q->shift[c]);
    channel.bias = q->bias[c] * EK_DW4_SCALE;
    channel.offset = EK_NARROW_ACC ? 1 + 2 * q->clamp.output_offset : q->clamp.output_offset;
    return channel;
}

/* The requantized accumulator (times EK_DW4_SCALE) plus the output offset, saturated to int8 (the
 * activation clamp comes after, ek_clamp_s8x4). Narrow: SMMULR(2 acc, m) as ek_rescale, then
 * ((w + 1) >> 1) + offset = (w + 1 + 2 offset) >> 1 with w = (high - (high < 0)) >> (right - 1), the
 * last shift folded into SSAT (ek_ssat8_half); EK_RELU kernels (the lower clamp is the output zero
 * point) take max(high >> (right - 1), 0) instead, which lands on the clamp for every negative high
 * product, so they need no clamp after (as ek_gemm_output). */
EK_INLINE int32_t ek_dw4_saturate(int32_t acc, ek_dw4_channel_t channel)
{
#if EK_NARROW_ACC
    const int32_t high = ek_smmulr(acc, channel.scale.multiplier);
#if EK_RELU
    return ek_ssat8_half(channel.offset + ek_relu(high >> channel.scale.right_minus_one));
#else
    return ek_ssat8_half(channel.offset + ((high + (high >> 31)) >> channel.scale.right_minus_one));
#endif
#else
    const int32_t result = ek_rescale(acc, channel.scale) + channel.offset;
    return result < -128 ? -128 : result > 127 ? 127 : result;
#endif
}

/* Each signed byte of v clamped to [lo, hi] (lo4, hi4: the bound in every byte; lower_only: hi is 127):
 * SSUB8 sets a lane's GE flag where the difference is >= 0, SEL picks by it (two instructions per bound
 * for four lanes). */
EK_INLINE uint32_t ek_clamp_s8x4(uint32_t v, uint32_t lo4, uint32_t hi4, int32_t lower_only)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t scratch;
    if (lower_only) {
        __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2" : "+r"(v), "=&r"(scratch) : "r"(lo4) : "cc");
        return v;
    }
    __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2\n\tssub8 %1, %3, %0\n\tsel %0, %0, %3"
            : "+r"(v), "=&r"(scratch) : "r"(lo4), "r"(hi4) : "cc");
    return v;
#else
    (void)lower_only; /* hi4 is 127 in every byte then */
    uint32_t out = 0;
    for (int32_t i = 0; i < 32; i += 8) {
        const int32_t x = (int8_t)(v >> i), lo = (int8_t)(lo4 >> i), hi = (int8_t)(hi4 >> i);
        out |= (uint32_t)(uint8_t)(x < lo ? lo : x > hi ? hi : x) << i;
    }
    return out;
#endif
}

/* One step of `pixels` (1 to 4) output pixels of one channel, the first one's window starting at word
 * `at` of the channel's plane in the three window rows: at stride 1 an even pixel 2j sums (x0, x1).(w0, w1)
 * from word j and x2 w2 from word j + 1, an odd one x1 w0 from word j and (x2, x3).(w1, w2) from word
 * j + 1; at stride 2 pixel j reads word j and the first value of word j + 1. w: the channel's six weight
 * words; the results requantized into out[0], out[channels]... */
EK_INLINE void ek_dw4_step(const int32_t *const rows[3], int32_t at, const int32_t *w, int32_t stride, int32_t pixels,
                           ek_dw4_channel_t k, ek_clamp_t clamp, int32_t channels, int8_t *out)
{
    int32_t acc[4] = {k.bias, k.bias, k.bias, k.bias};
    _Pragma("GCC unroll 3") for (int32_t ky = 0; ky < 3; ++ky) {
        const int32_t *x = rows[ky] + at, *wk = w + 2 * ky;
        _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
            if (stride == 2 || p % 2 == 0) {
                const int32_t j = stride == 1 ? p / 2 : p;
                acc[p] = ek_smlabt(x[j + 1], wk[1], ek_smlad(x[j], wk[0], acc[p]));
            } else {
                acc[p] = ek_smlad(x[p / 2 + 1], wk[1], ek_smlatb(x[p / 2], wk[0], acc[p]));
            }
        }
    }
    if ((EK_NARROW_ACC && EK_RELU) || (__builtin_constant_p(clamp.act_min) && clamp.act_min == -128
                                       && __builtin_constant_p(clamp.act_max) && clamp.act_max == 127)) {
        /* no clamp beyond int8, or one ek_dw4_saturate made */
        _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
            out[p * channels] = (int8_t)ek_dw4_saturate(acc[p], k);
        }
        return;
    }
    /* the pixels' bytes in one word (pixels 0 and 2, 1 and 3 packed as int16 halves first), clamped at once */
    int32_t v[4] = {0, 0, 0, 0};
    _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
        v[p] = ek_dw4_saturate(acc[p], k);
    }
    const uint32_t even = ek_halves(v[0], v[2], 0), odd = ek_halves(v[1], v[3], 0);
    uint32_t word = (even & 0x00FF00FFu) | ((odd & 0x00FF00FFu) << 8);
    word = ek_clamp_s8x4(word, (uint32_t)(uint8_t)clamp.act_min * 0x01010101u,
                         (uint32_t)(uint8_t)clamp.act_max * 0x01010101u,
                         __builtin_constant_p(clamp.act_max) && clamp.act_max == 127);
    _Pragma("GCC unroll 4") for (int32_t p = 0; p < pixels; ++p) {
        out[p * channels] = (int8_t)(word >> (8 * p));
    }
}

/* One output row of channel c: its plane in the three window rows (rows), its weight words w, its
 * requantization k, into out (the output row at channel c). Four output pixels per
 * step, then one step of the 1-3 left. */
EK_INLINE void ek_dw4_channel_row(const int32_t *const rows[3], const int32_t *w, int32_t stride, int32_t out_w,
                                  int32_t channels, ek_dw4_channel_t k, ek_clamp_t clamp, int8_t *out)
{
    int32_t at = 0;
    for (; at < out_w / 4 * 2 * stride; at += 2 * stride, out += 4 * channels) {
        ek_dw4_step(rows, at, w, stride, 4, k, clamp, channels, out);
    }
    if (out_w % 4) {
        ek_dw4_step(rows, at, w, stride, out_w % 4, k, clamp, channels, out);
    }
}

/* Static shape of a dsp_c4 depthwise layer. */
typedef struct {
    int32_t height, width, channels, out_h, out_w, stride, top, left, pairs;
} ek_dw4_shape_t;

/* Channels c .. c + n - 1 (n <= 4) of the whole output; scratch: 24 weight words, then the window's
 * three rows of four planes of `pairs` words, a ring: input row y in row (y + top) % 3. Before each
 * output row the rows it reads and the previous one did not are copied from the input (or set to
 * padding). */
EK_INLINE void ek_dw4_group(const int8_t *input, const int8_t *filter, const ek_requant_t *q, int8_t *output,
                            int32_t *scratch, int32_t pad4, int32_t c, int32_t n, const ek_dw4_shape_t s)
{
    int32_t *weights = scratch, *window = scratch + 24;
    const int32_t row_words = 4 * s.pairs;
    const int32_t pad2 = (int32_t)((uint32_t)(uint16_t)(int8_t)pad4 * 0x00010001u);
    ek_dw4_weights(filter, s.channels, c, n, weights);
    ek_dw4_channel_t k[4];
    for (int32_t i = 0; i < n; ++i) {
        k[i] = ek_dw4_channel(q, c + i);
    }
    for (int32_t oy = 0; oy < s.out_h; ++oy) {
        for (int32_t i = oy > 0 ? 3 - s.stride : 0; i < 3; ++i) {
            const int32_t y = oy * s.stride - s.top + i;
            int32_t *row = window + (oy * s.stride + i) % 3 * row_words;
            if (y < 0 || y >= s.height) {
                for (int32_t m = 0; m < row_words; ++m) {
                    row[m] = pad2;
                }
            } else {
                ek_dw4_row(input + y * s.width * s.channels + c, s.width, s.channels, s.left, s.pairs, n, pad4, row);
            }
        }
        int8_t *out = output + oy * s.out_w * s.channels + c;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t *plane = window + i * s.pairs;
            const int32_t *const rows[3] = {plane + oy * s.stride % 3 * row_words,
                                            plane + (oy * s.stride + 1) % 3 * row_words,
                                            plane + (oy * s.stride + 2) % 3 * row_words};
            ek_dw4_channel_row(rows, weights + 6 * i, s.stride, s.out_w, s.channels, k[i], q->clamp, out + i);
        }
    }
}
#endif /* !EK_CHANNEL_TABLE */

#endif
