/*
 * half.h - IEEE binary16 (fp16) and bfloat16 conversions, bit-exact.
 *
 * float -> half rounds to nearest, ties to even, as CUDA's __float2half_rn and
 * PyTorch's .half() do: values whose magnitude rounds above 65504 become Inf
 * (65520 is the first to do so), subnormals are kept, NaN stays NaN (quiet).
 * float -> bfloat16 rounds to nearest even on the upper 16 bits of the fp32
 * pattern; it keeps fp32's range, so it overflows only where fp32 does.
 */
#ifndef ORCH_HALF_H
#define ORCH_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t orch_f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float orch_bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline uint16_t orch_f32_to_bf16(float x)
{
    uint32_t u = orch_f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet, never round to Inf */
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return (uint16_t)(u >> 16);
}

static inline float orch_bf16_to_f32(uint16_t h)
{
    return orch_bits_f32((uint32_t)h << 16);
}

static inline uint16_t orch_f32_to_f16(float x)
{
    uint32_t u = orch_f32_bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* >= 65520 rounds to Inf (and Inf stays Inf) */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {   /* below 2^-14: subnormal half or zero */
        if (abs < 0x33000000u) /* below half of the smallest subnormal: 0 */
            return (uint16_t)sign;
        uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(abs >> 23); /* 14..24 */
        uint32_t half_mant = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half_mant & 1u)))
            half_mant++;
        return (uint16_t)(sign | half_mant);
    }
    /* normal: rebias exponent 127 -> 15 and round the 13 dropped bits */
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

static inline float orch_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0)
            return orch_bits_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return orch_bits_f32(sign | 0x7f800000u | (mant << 13));
    return orch_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* x rounded to the nearest bf16 / fp16 value and widened back to fp32. */
static inline float orch_round_bf16(float x)
{
    return orch_bf16_to_f32(orch_f32_to_bf16(x));
}

static inline float orch_round_f16(float x)
{
    return orch_f16_to_f32(orch_f32_to_f16(x));
}

#endif
