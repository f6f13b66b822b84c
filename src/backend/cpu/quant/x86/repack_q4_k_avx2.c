// backend/cpu/quant/x86/repack_q4_k_avx2.c: AVX2 kernel for Q4_K weights repacked in groups
// of 8 rows ("q4_Kx8", layout and result contract in quant.h). Per sub-block pair, each 32-byte
// chunk (4 bytes of each of 8 rows) is split into low nibbles (sub-block 2p) and high nibbles
// (2p + 1) once and reused by every column; maddubs against the column's broadcast 4 bytes gives
// 8 rows x 2 int16 pair sums, the 8 chunks add in int16 (|pair| <= 2 * 15 * 127 = 3810, 8 of
// them <= 30480: exact; Q8_K codes are in [-127, 127]), and one madd with the row's scale held
// in both int16 halves of its lane lands scale * sub-block sum in the row's int32 lane. The min
// terms are 4 madds of the rows' (mn[2q], mn[2q+1]) with the column's Q8_K bsums pair sums.
// The 6-bit scales and mins of a super-block unpack with a few shifts, shared by the columns.
#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/types.h"

static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

// pshufb patterns over a lane of unpacked 6-bit values (sub-block s, row r at in-lane byte
// 4s + r % 4, rows 0..3 in the low lane, 4..7 in the high one): row r's int32 lane gets the
// int16 pair (v[a][r], v[b][r]). 0..3: (s, s) for the scales; 4, 5: (0, 1), (2, 3) for the mins.
#define ROW4(a, b)                                                                                \
    4 * (a), 0x80, 4 * (b), 0x80, 4 * (a) + 1, 0x80, 4 * (b) + 1, 0x80, 4 * (a) + 2, 0x80,        \
        4 * (b) + 2, 0x80, 4 * (a) + 3, 0x80, 4 * (b) + 3, 0x80
static const uint8_t rowpat[6][32] __attribute__((aligned(32))) = {
    {ROW4(0, 0), ROW4(0, 0)}, {ROW4(1, 1), ROW4(1, 1)}, {ROW4(2, 2), ROW4(2, 2)},
    {ROW4(3, 3), ROW4(3, 3)}, {ROW4(0, 1), ROW4(0, 1)}, {ROW4(2, 3), ROW4(2, 3)}};

static inline __m256i pat(int i)
{
    return _mm256_load_si256((const __m256i *)(const void *)rowpat[i]);
}

static inline __m128i load128(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

// The 64 6-bit values packed at p (quant.h) as bytes: v[0] sub-blocks 0..3, v[1] 4..7.
static inline __attribute__((always_inline)) void unpack6(const uint8_t *p, __m256i v[2])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i lo = qa_load(p);
    const __m256i hi = _mm256_broadcastsi128_si256(load128(p + 32));
    // high bits of a value: 4 * half + 2 * lane, moved to bits 4..5
    const __m256i h0 = _mm256_sllv_epi32(hi, _mm256_setr_epi32(4, 4, 4, 4, 2, 2, 2, 2));
    const __m256i h1 = _mm256_srlv_epi32(hi, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2));
    v[0] = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_and_si256(h0, m30));
    const __m256i lo1 = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4);
    v[1] = _mm256_or_si256(lo1, _mm256_and_si256(h1, m30));
}

// qa_prefetch_span's loop, forced inline: GCC finds that out-of-line helper "looping const"
// (a prefetch is no side effect to it) and deletes the calls, prefetches and all.
static inline __attribute__((always_inline)) void prefetch_sb(const uint8_t *sb)
{
    #pragma GCC unroll 32
    for (int off = 0; off < Q4_KX8_SB_BYTES; off += 64) {
        _mm_prefetch((const char *)sb + QA_PREFETCH_AHEAD + off, _MM_HINT_T0);
    }
}

// nc is a constant at every call site and the column loops are unrolled, so the columns' sums
// live in registers.
static inline __attribute__((always_inline)) void
gemm_cols(int nsb, const uint8_t *w, const void *const *vy, const int nc, float *s)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const struct block_q8_K *y[REPACK_MAX_COLS];
    __m256 acc[REPACK_MAX_COLS];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        y[c] = vy[c];
        acc[c] = _mm256_setzero_ps();
    }
    for (int i = 0; i < nsb; i++) {
        const uint8_t *sb = w + (size_t)i * Q4_KX8_SB_BYTES;
        prefetch_sb(sb); // past a group's end: the next group's
        __m256i sc[2], mn[2], mp[4];
        unpack6(sb + Q4_KX8_SCALES, sc);
        unpack6(sb + Q4_KX8_MINS, mn);
        #pragma GCC unroll 8
        for (int q = 0; q < 4; q++) {
            mp[q] = _mm256_shuffle_epi8(mn[q / 2], pat(4 + q % 2)); // (mn[2q][r], mn[2q + 1][r])
        }
        __m256i isum[REPACK_MAX_COLS];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            isum[c] = _mm256_setzero_si256();
        }
        // not unrolled: GCC would interleave the pairs and spill
        #pragma GCC unroll 1
        for (int p = 0; p < 4; p++) {
            const __m256i sca = _mm256_shuffle_epi8(sc[p / 2], pat(2 * (p % 2)));
            const __m256i scb = _mm256_shuffle_epi8(sc[p / 2], pat(2 * (p % 2) + 1));
            const uint8_t *codes = sb + Q4_KX8_CODES + 256 * p;
            __m256i sl[REPACK_MAX_COLS], sh[REPACK_MAX_COLS];
            #pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const __m256i v = qa_load(codes + 32 * k);
                const __m256i lo = _mm256_and_si256(v, m4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const int8_t *q = y[c][i].qs + 64 * p + 4 * k;
                    const __m256i pl = _mm256_maddubs_epi16(lo, bcast4(q));
                    const __m256i ph = _mm256_maddubs_epi16(hi, bcast4(q + 32));
                    sl[c] = k ? _mm256_add_epi16(sl[c], pl) : pl;
                    sh[c] = k ? _mm256_add_epi16(sh[c], ph) : ph;
                    // keeps the sums a chain: reassociated into a tree, the 2 x 8 x nc
                    // products would all be live at once and spill
                    __asm__("" : "+x"(sl[c]), "+x"(sh[c]));
                }
            }
            // scale <= 63: |scale * sub-block sum| <= 63 * 60960, 8 of them < 2^25
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const __m256i t =
                    _mm256_add_epi32(_mm256_madd_epi16(sl[c], sca), _mm256_madd_epi16(sh[c], scb));
                isum[c] = _mm256_add_epi32(isum[c], t);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(load128(sb + Q4_KX8_D));
        const __m256 dmw = _mm256_cvtph_ps(load128(sb + Q4_KX8_DMIN));
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            // bs[j] = bsums[2j] + bsums[2j + 1] (|.| <= 32 * 127), packed to int16: the 32-bit
            // elements are (bs0, bs1), (bs2, bs3), (again), (bs4, bs5), (bs6, bs7), (again); pair
            // q of sub-blocks (2q, 2q + 1) takes element (q & 1) + 4 * (q >> 1)
            const __m256i bs = _mm256_madd_epi16(qa_load(y[c][i].bsums), ones);
            const __m256i bs16 = _mm256_packs_epi32(bs, bs);
            __m256i msum = _mm256_setzero_si256();
            #pragma GCC unroll 8
            for (int q = 0; q < 4; q++) {
                const int src = (q & 1) + 4 * (q >> 1);
                const __m256i b = _mm256_permutevar8x32_epi32(bs16, _mm256_set1_epi32(src));
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mp[q], b));
            }
            const __m256 dy = _mm256_set1_ps(y[c][i].d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dw, dy), acc[c]);
            acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmw, dy), acc[c]);
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        _mm256_storeu_ps(s + 8 * c, acc[c]);
    }
}

void cpu_gemm_q4_Kx8_q8_K_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *aux, int nc, float *s)
{
    (void)aux;
    const int nsb = K / QK_K;
    switch (nc) {
    case 1: gemm_cols(nsb, w, y, 1, s); break;
    case 2: gemm_cols(nsb, w, y, 2, s); break;
    case 3: gemm_cols(nsb, w, y, 3, s); break;
    default: gemm_cols(nsb, w, y, 4, s); break;
    }
}
