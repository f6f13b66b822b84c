// kvcache/kv_cells_avx2.c: AVX2 mask-row expansion (see kvcache_int.h). A mask row is mostly
// stores, and 32-byte stores write it about twice as fast as the 16-byte ones of the portable
// loop in kv_cells.c; each store's lanes come from one broadcast of the bits, an AND with the
// lanes' bit, a compare with zero and an AND with -inf. The 64-cell body is written out in
// full (the loop overhead otherwise costs as much as the stores) and asks for the lines 1 KiB
// ahead in write mode: a large mask lives in L2, and this saves 5-10% there.
#include "kvcache/kvcache_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define NEG_F32 0xFF800000u
#define NEG_F16 0xFC00u
#define AHEAD 1024 // bytes

// prefetchw: a hint, so no fault past the end of the mask (the address is formed as an
// integer for that reason); CPUs without the instruction run it as a no-op.
#define PREFETCH_W(p) __builtin_prefetch((const void *)((uintptr_t)(p) + AHEAD), 1, 3)

// 8 floats at dst: lane k is 0 when v has the bit of sel's lane k, else -inf.
#define PUT8(dst, v, sel)                                                                  \
    _mm256_storeu_si256((__m256i *)(dst),                                                  \
                        _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(v, sel), zero), \
                                         neg))
// 16 halves at dst, the same way with 16-bit lanes.
#define PUT16(dst, v)                                                                      \
    _mm256_storeu_si256((__m256i *)(dst),                                                  \
                        _mm256_and_si256(_mm256_cmpeq_epi16(_mm256_and_si256(v, sel), zero), \
                                         neg))

__attribute__((target("prfchw"))) void kv_mask_expand_f32_avx2(uint32_t *dst,
                                                               const uint64_t *bits, int32_t n)
{
    const __m256i neg = _mm256_set1_epi32((int)NEG_F32);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i s0 = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128); // bits 0..7
    const __m256i s1 = _mm256_slli_epi32(s0, 8);                       // bits 8..15
    const __m256i s2 = _mm256_slli_epi32(s0, 16);
    const __m256i s3 = _mm256_slli_epi32(s0, 24);
    int32_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const uint64_t w = bits[j >> 6];
        PREFETCH_W(dst + j);
        PREFETCH_W(dst + j + 16);
        PREFETCH_W(dst + j + 32);
        PREFETCH_W(dst + j + 48);
        const __m256i lo = _mm256_set1_epi32((int)(uint32_t)w);
        const __m256i hi = _mm256_set1_epi32((int)(uint32_t)(w >> 32));
        PUT8(dst + j, lo, s0);
        PUT8(dst + j + 8, lo, s1);
        PUT8(dst + j + 16, lo, s2);
        PUT8(dst + j + 24, lo, s3);
        PUT8(dst + j + 32, hi, s0);
        PUT8(dst + j + 40, hi, s1);
        PUT8(dst + j + 48, hi, s2);
        PUT8(dst + j + 56, hi, s3);
    }
    if (j < n) { // the last, partial word: whole groups of 8, then single elements
        const uint64_t w = bits[j >> 6];
        int32_t k = 0;
        for (; j + k + 8 <= n; k += 8) {
            const __m256i v = _mm256_set1_epi32((int)(uint32_t)((w >> k) & 0xFF));
            PUT8(dst + j + k, v, s0);
        }
        for (; j + k < n; k++) {
            dst[j + k] = ((w >> k) & 1) ? 0 : NEG_F32;
        }
    }
}

__attribute__((target("prfchw"))) void kv_mask_expand_f16_avx2(uint16_t *dst,
                                                               const uint64_t *bits, int32_t n)
{
    const __m256i neg = _mm256_set1_epi16((short)NEG_F16);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048,
                                          4096, 8192, 16384, (short)0x8000);
    int32_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const uint64_t w = bits[j >> 6];
        PREFETCH_W(dst + j);
        PREFETCH_W(dst + j + 32);
        PUT16(dst + j, _mm256_set1_epi16((short)(uint16_t)w));
        PUT16(dst + j + 16, _mm256_set1_epi16((short)(uint16_t)(w >> 16)));
        PUT16(dst + j + 32, _mm256_set1_epi16((short)(uint16_t)(w >> 32)));
        PUT16(dst + j + 48, _mm256_set1_epi16((short)(uint16_t)(w >> 48)));
    }
    if (j < n) { // the last, partial word: whole groups of 16, then single elements
        const uint64_t w = bits[j >> 6];
        int32_t k = 0;
        for (; j + k + 16 <= n; k += 16) {
            PUT16(dst + j + k, _mm256_set1_epi16((short)(uint16_t)(w >> k)));
        }
        for (; j + k < n; k++) {
            dst[j + k] = ((w >> k) & 1) ? 0 : NEG_F16;
        }
    }
}
#endif
