// backend/cpu/quant/x86/quant_avx2.h: small AVX2 helpers shared by the *_avx2.c dot kernels
// (include only from files built with -mavx2 -mfma -mf16c). Integer products of int8 codes go
// through maddubs (u8 x s8 -> pairwise int16) and madd (int16 pairs -> int32), which is exact
// for every code range our blocks hold (checked per kernel in the comments).
#pragma once
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

// Sum of the 8 floats of v (fixed order: halves, then pairs).
static inline float qa_hsum_ps(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline float qa_hsum_ps128(__m128 r)
{
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// 8 int32 lanes, each the sum of 4 adjacent products x[i]*y[i] of signed bytes. Exact when
// y != -128 (the activation quantizers never produce it); x may be -128.
static inline __m256i qa_dot_i8(__m256i x, __m256i y)
{
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// Same for unsigned x (0..127): maddubs directly.
static inline __m256i qa_dot_u8(__m256i x, __m256i y)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

// The 32 nibbles of 16 bytes as bytes: low nibbles (elements 0..15) in the low lane, high
// nibbles (elements 16..31) in the high lane -- the legacy 32-element block order.
static inline __m256i qa_nibbles32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

// Bit j of the 32-bit little-endian word at p as byte j: 0xff if set, 0 if clear.
static inline __m256i qa_bits32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

// Looks up 32 nibbles (as qa_nibbles32 orders them) in a 16-entry int8 table.
static inline __m256i qa_lut32(const uint8_t *qs, __m128i table)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(t, m4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(t, 4), m4));
    return _mm256_set_m128i(hi, lo);
}

// Half -> float with the F16C instruction (exact, as fp16_to_f32, but one instruction: the
// software conversion costs more than a whole Q4_0 block's integer dot).
static inline float qa_f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

// Asks for [p, p + n) to be brought into cache.
// always_inline: out of line, GCC classes a function of prefetches alone as "const" and
// deletes its calls.
static inline __attribute__((always_inline)) void qa_prefetch_range(const void *p, size_t n)
{
    for (size_t off = 0; off < n; off += 64) {
        _mm_prefetch((const char *)p + off, _MM_HINT_T0);
    }
}

// Asks for the weight bytes QA_PREFETCH_AHEAD past [p, p + n) to be brought into cache. Decode
// streams every weight once from DRAM; the hardware prefetcher alone left a third of the
// bandwidth unused (docs/internals/performance.md, "Prefetch").
#define QA_PREFETCH_AHEAD 2048
static inline __attribute__((always_inline)) void qa_prefetch_span(const void *p, size_t n)
{
    qa_prefetch_range((const char *)p + QA_PREFETCH_AHEAD, n);
}

static inline __m256i qa_load(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

// Transposes 8 x 8 int32 lanes in place: afterwards v[k] lane r holds what v[r] lane k held.
// The repacks use it to interleave 8 rows' 4-byte pieces (24 shuffles for 256 bytes).
static inline void qa_transpose8x32(__m256i v[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);     // r_i[0] r_i+1[0] r_i[1] r_i+1[1]
        t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]); // lanes 2, 3 (and 6, 7 above)
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);         // lane 0 (4) of 4 rows
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);     // lane 1 (5)
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]); // lane 2 (6)
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]); // lane 3 (7)
    }
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
    }
}

// Group g of a repack's source: rows[r] = row 8g + r (stride bytes apart). Returns where the
// next group's rows start, NULL after the last group. The repacks read a group as 8
// interleaved short streams (a few hundred bytes each per pass), which the hardware
// prefetcher does not follow, so they ask for the next group's rows share by share
// (qa_prefetch_range) while copying this one.
static inline const char *qa_group_rows(const void *src, size_t stride, int64_t g,
                                        int64_t n_groups, const char *rows[8])
{
    const char *first = (const char *)src + (size_t)(8 * g) * stride;
    for (int r = 0; r < 8; r++) {
        rows[r] = first + (size_t)r * stride;
    }
    return g + 1 < n_groups ? first + 8 * stride : NULL;
}

// Streaming (non-temporal) stores for the repacks: the copy is not read again until inference
// streams it back from DRAM, so its lines go straight to memory instead of being read in first
// (a third less traffic). p must be 32- (16-) byte aligned; the caller ends with _mm_sfence.
static inline void qa_stream32(void *p, __m256i v)
{
    _mm256_stream_si256((__m256i *)p, v);
}

static inline void qa_stream16(void *p, __m128i v)
{
    _mm_stream_si128((__m128i *)p, v);
}
