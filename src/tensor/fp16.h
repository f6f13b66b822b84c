// tensor/fp16.h: IEEE half (binary16) and bfloat16 conversions, inline and branch-light.
// Pure integer code (F16C is not assumed): f32 -> f16 and f32 -> bf16 round to nearest even,
// handle subnormals, infinities and NaN (kept quiet, sign kept). f16/bf16 -> f32 is exact.
// These are the only conversions llem uses, so every type's scales agree with GGUF files.
#pragma once
#include <stdint.h>
#include <string.h>

static inline uint32_t fp16_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fp16_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0) {
        // zero or subnormal: m * 2^-24 is exact in f32
        float v = (float)m * 0x1p-24f;
        return fp16_bits_f32(fp16_f32_bits(v) | sign);
    }
    if (e == 31) {
        return fp16_bits_f32(sign | 0x7f800000u | (m << 13)); // inf, NaN keeps its payload
    }
    return fp16_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

static inline uint16_t fp16_from_f32(float f)
{
    uint32_t x = fp16_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) { // NaN: quiet, top payload bits kept
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    if (ax >= 0x477ff000u) { // >= 65520 (including inf) rounds to inf
        return (uint16_t)(sign | 0x7c00u);
    }
    if (ax >= 0x38800000u) { // normal half (>= 2^-14): rebias, round the 13 dropped bits
        uint32_t r = ax - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u) { // <= 2^-25: rounds to zero (2^-25 is a tie, even is 0)
        return (uint16_t)sign;
    }
    // subnormal half: value in units of 2^-24 is m >> (126 - e), rounded to nearest even
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; // 14..23
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) {
        q++;
    }
    return (uint16_t)(sign | q);
}

static inline float bf16_to_f32(uint16_t h)
{
    return fp16_bits_f32((uint32_t)h << 16);
}

static inline uint16_t bf16_from_f32(float f)
{
    uint32_t u = fp16_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 64u); // NaN: force quiet
    }
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
