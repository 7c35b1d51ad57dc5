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
#include <stdint.h>
#include <string.h>

#define EK_INLINE static inline __attribute__((always_inline))

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
EK_INLINE int32_t ek_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF)));
}
EK_INLINE int32_t ek_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((a >> 16) * (int16_t)(b & 0xFFFF)));
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

/* TFLite's MultiplyByQuantizedMultiplier (multiplier >= 0), output offset and clamp.
 * (int64 product + 2^30) >> 31 equals gemmlowp's SaturatingRoundingDoublingHighMul for every
 * multiplier >= 0 (its truncating division with a sign-dependent nudge rounds the same way; the
 * only saturating case needs multiplier INT32_MIN). */
EK_INLINE int8_t ek_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                               int32_t act_min, int32_t act_max)
{
    const int32_t left = shift & ~(shift >> 31); /* max(shift, 0) */
    const int32_t right = left - shift;          /* max(-shift, 0) */
    const int32_t x = (int32_t)((uint32_t)acc << left);
    const int32_t high = (int32_t)(((int64_t)x * multiplier + (1LL << 30)) >> 31);
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t threshold = (mask >> 1) - (high >> 31); /* + 1 when high < 0 */
    int32_t result = (high >> right) + ((high & mask) > threshold) + output_offset;
    result = result < act_min ? act_min : result;
    result = result > act_max ? act_max : result;
    return (int8_t)result;
}

/* The quantization of one MAC layer's output channels. */
typedef struct {
    const int32_t *bias; /* with the input offset folded in */
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t output_offset, act_min, act_max;
} ek_requant_t;

/* Two rows a, b of k int8 values times filter rows n and n + 1 (k apart): four int32 sums on top of
 * the bias, K in steps of 4 with SXTB16/SMLAD, the rest one by one. */
EK_INLINE void ek_dot_2x2(const int8_t *a, const int8_t *b, const int8_t *w0, int32_t k, int32_t acc[4])
{
    const int8_t *w1 = w0 + k;
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    int32_t i = 0;
    for (; i + 4 <= k; i += 4) {
        int32_t xa = ek_read_s8x4(a + i), xb = ek_read_s8x4(b + i);
        int32_t xa_even = ek_sxtb16(xa), xa_odd = ek_sxtb16_ror8(xa);
        int32_t xb_even = ek_sxtb16(xb), xb_odd = ek_sxtb16_ror8(xb);
        int32_t w = ek_read_s8x4(w0 + i);
        int32_t w_even = ek_sxtb16(w), w_odd = ek_sxtb16_ror8(w);
        a0 = ek_smlad(xa_even, w_even, a0);
        a0 = ek_smlad(xa_odd, w_odd, a0);
        b0 = ek_smlad(xb_even, w_even, b0);
        b0 = ek_smlad(xb_odd, w_odd, b0);
        w = ek_read_s8x4(w1 + i);
        w_even = ek_sxtb16(w);
        w_odd = ek_sxtb16_ror8(w);
        a1 = ek_smlad(xa_even, w_even, a1);
        a1 = ek_smlad(xa_odd, w_odd, a1);
        b1 = ek_smlad(xb_even, w_even, b1);
        b1 = ek_smlad(xb_odd, w_odd, b1);
    }
    for (; i < k; ++i) {
        a0 += a[i] * w0[i];
        a1 += a[i] * w1[i];
        b0 += b[i] * w0[i];
        b1 += b[i] * w1[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}

/* One row a of k int8 values times filter rows n and n + 1 (k apart). */
EK_INLINE void ek_dot_1x2(const int8_t *a, const int8_t *w0, int32_t k, int32_t acc[2])
{
    const int8_t *w1 = w0 + k;
    int32_t a0 = acc[0], a1 = acc[1];
    int32_t i = 0;
    for (; i + 4 <= k; i += 4) {
        int32_t x = ek_read_s8x4(a + i);
        int32_t x_even = ek_sxtb16(x), x_odd = ek_sxtb16_ror8(x);
        int32_t w = ek_read_s8x4(w0 + i);
        a0 = ek_smlad(x_even, ek_sxtb16(w), a0);
        a0 = ek_smlad(x_odd, ek_sxtb16_ror8(w), a0);
        w = ek_read_s8x4(w1 + i);
        a1 = ek_smlad(x_even, ek_sxtb16(w), a1);
        a1 = ek_smlad(x_odd, ek_sxtb16_ror8(w), a1);
    }
    for (; i < k; ++i) {
        a0 += a[i] * w0[i];
        a1 += a[i] * w1[i];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* One row a of k int8 values times one filter row. */
EK_INLINE int32_t ek_dot_1x1(const int8_t *a, const int8_t *w, int32_t k, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= k; i += 4) {
        int32_t x = ek_read_s8x4(a + i), y = ek_read_s8x4(w + i);
        acc = ek_smlad(ek_sxtb16(x), ek_sxtb16(y), acc);
        acc = ek_smlad(ek_sxtb16_ror8(x), ek_sxtb16_ror8(y), acc);
    }
    for (; i < k; ++i) {
        acc += a[i] * w[i];
    }
    return acc;
}

/* Rows a and b (k int8 values each; b may be 0: one row) times every filter row ([n][k]): writes the
 * n requantized outputs of row a to out_a and of row b to out_b. Output channels go two at a time. */
EK_INLINE void ek_gemm_rows_s8(const int8_t *a, const int8_t *b, const int8_t *filter, int32_t k, int32_t n,
                               const ek_requant_t *q, int8_t *out_a, int8_t *out_b)
{
    int32_t c = 0;
    for (; c + 2 <= n; c += 2) {
        const int8_t *w = filter + c * k;
        int32_t acc[4] = {q->bias[c], q->bias[c + 1], q->bias[c], q->bias[c + 1]};
        if (b != 0) {
            ek_dot_2x2(a, b, w, k, acc);
            out_b[c] = ek_requantize(acc[2], q->multiplier[c], q->shift[c], q->output_offset, q->act_min, q->act_max);
            out_b[c + 1] = ek_requantize(acc[3], q->multiplier[c + 1], q->shift[c + 1], q->output_offset,
                                         q->act_min, q->act_max);
        } else {
            ek_dot_1x2(a, w, k, acc);
        }
        out_a[c] = ek_requantize(acc[0], q->multiplier[c], q->shift[c], q->output_offset, q->act_min, q->act_max);
        out_a[c + 1] = ek_requantize(acc[1], q->multiplier[c + 1], q->shift[c + 1], q->output_offset,
                                     q->act_min, q->act_max);
    }
    if (c < n) {
        const int8_t *w = filter + c * k;
        out_a[c] = ek_requantize(ek_dot_1x1(a, w, k, q->bias[c]), q->multiplier[c], q->shift[c], q->output_offset,
                                 q->act_min, q->act_max);
        if (b != 0) {
            out_b[c] = ek_requantize(ek_dot_1x1(b, w, k, q->bias[c]), q->multiplier[c], q->shift[c],
                                     q->output_offset, q->act_min, q->act_max);
        }
    }
}

#endif
