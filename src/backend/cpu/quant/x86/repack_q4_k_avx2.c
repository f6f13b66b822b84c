// backend/cpu/quant/x86/repack_q4_k_avx2.c: AVX2 kernel for Q4_K weights repacked in groups
// of 8 rows ("q4_Kx8", layout and result contract in quant.h). Per sub-block pair, each 32-byte
// chunk (4 bytes of each of 8 rows) is split into low nibbles (sub-block 2p) and high nibbles
// (2p + 1) once and reused by every column; maddubs against the column's broadcast 4 bytes gives
// 8 rows x 2 int16 pair sums, the 8 chunks add in int16 (|pair| <= 2 * 15 * 127 = 3810, 8 of
// them <= 30480: exact; Q8_K codes are in [-127, 127]), and one madd with the row's scale held
// in both int16 halves of its lane lands scale * sub-block sum in the row's int32 lane. The min
// terms are 4 madds of the rows' (mn[2q], mn[2q+1]) with the column's Q8_K bsums pair sums.
// The 6-bit scales and mins of a super-block unpack with a few shifts, shared by the columns.
// Also the load-time copy into this layout (cpu_q4_Kx8_repack_avx2, at the end).
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
            // this quarter of the super-block, 2 KiB ahead (past a group's end: the next
            // group's), as it is read: the whole super-block (18 lines) asked for at once
            // streamed 10-20 % slower (docs/internals/performance.md, session 7); +63: a
            // quarter does not start on a line
            qa_prefetch_span(sb + p * (Q4_KX8_SB_BYTES / 4), Q4_KX8_SB_BYTES / 4 + 63);
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

// ---- the repack (the scalar cpu_q4_Kx8_repack defines it; this one writes the same bytes) ---

// Packs 8 sub-blocks' 6-bit values, lo = sub-blocks 0..3 and hi = 4..7 (64-bit lane j: the 8
// rows' bytes), into the 48-byte layout of quant.h at p.
static inline void pack6_avx2(__m256i lo, __m256i hi, uint8_t *p)
{
    const __m256i m0f = _mm256_set1_epi8(0x0f), m03 = _mm256_set1_epi8(0x03);
    // low nibbles: byte [j][r] = lo | hi << 4; 32-bit lane 2j + h (rows 4h..4h+3) goes to 4h + j
    const __m256i nib = _mm256_or_si256(_mm256_and_si256(lo, m0f),
                                        _mm256_slli_epi16(_mm256_and_si256(hi, m0f), 4));
    const __m256i lows = _mm256_permutevar8x32_epi32(nib, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    qa_stream16(p, _mm256_castsi256_si128(lows)); // p is only 16-byte aligned for the mins
    qa_stream16(p + 16, _mm256_extracti128_si256(lows, 1));
    // 2-bit highs: byte [j][r] = hl | hh << 4, then rows 4..7 join rows 0..3 shifted by 2
    const __m256i hl = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m03);
    const __m256i hh = _mm256_and_si256(_mm256_srli_epi16(hi, 4), m03);
    const __m256i x = _mm256_or_si256(hl, _mm256_slli_epi16(hh, 4));
    const __m256i y = _mm256_or_si256(x, _mm256_slli_epi32(_mm256_srli_epi64(x, 32), 2));
    const __m256i even = _mm256_permutevar8x32_epi32(y, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
    qa_stream16(p + 32, _mm256_castsi256_si128(even));
}

// One super-block of 8 rows: d and dmin, the scales and mins (12 bytes per row, transposed to
// one 64-bit lane of 8 rows per byte and unpacked as get_scale_min_k4 does), the codes (an 8 x 8
// transpose of 4-byte pieces per 32 bytes of each row).
static inline void repack_super_block(const struct block_q4_K *const b[8], uint8_t *sb)
{
    int32_t dd[8];
    __m128i x[8];
    for (int r = 0; r < 8; r++) {
        memcpy(&dd[r], &b[r]->d, 4); // d, then dmin
        x[r] = _mm_loadu_si128((const __m128i *)(const void *)b[r]); // d, dmin, scales[12]
    }
    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)dd);
    const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                           0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    qa_stream32(sb + Q4_KX8_D, _mm256_permute4x64_epi64(_mm256_shuffle_epi8(w, split), 0xd8));

    // 8 rows x 16 bytes -> per byte k a 64-bit lane of the 8 rows
    __m128i s[8], t[8];
    for (int i = 0; i < 4; i++) {
        s[2 * i] = _mm_unpacklo_epi8(x[2 * i], x[2 * i + 1]);     // bytes 0..7, rows 2i, 2i+1
        s[2 * i + 1] = _mm_unpackhi_epi8(x[2 * i], x[2 * i + 1]); // bytes 8..15
    }
    for (int h = 0; h < 2; h++) { // rows 4h..4h+3: t[4h + q] = bytes 4q..4q+3 (q = 1..3)
        t[4 * h + 1] = _mm_unpackhi_epi16(s[4 * h], s[4 * h + 2]);
        t[4 * h + 2] = _mm_unpacklo_epi16(s[4 * h + 1], s[4 * h + 3]);
        t[4 * h + 3] = _mm_unpackhi_epi16(s[4 * h + 1], s[4 * h + 3]);
    }
    __m256i q[3]; // q[i]: scale bytes 4i..4i+3 (block bytes 4 + 4i..), a 64-bit lane each
    for (int i = 0; i < 3; i++) {
        q[i] = _mm256_set_m128i(_mm_unpackhi_epi32(t[i + 1], t[i + 5]),
                                _mm_unpacklo_epi32(t[i + 1], t[i + 5]));
    }
    const __m256i m3f = _mm256_set1_epi8(0x3f), m0f = _mm256_set1_epi8(0x0f),
                  m30 = _mm256_set1_epi8(0x30);
    const __m256i sc_lo = _mm256_and_si256(q[0], m3f), mn_lo = _mm256_and_si256(q[1], m3f);
    const __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(q[2], m0f),
                                          _mm256_and_si256(_mm256_srli_epi16(q[0], 2), m30));
    const __m256i mn_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q[2], 4), m0f),
                                          _mm256_and_si256(_mm256_srli_epi16(q[1], 2), m30));
    pack6_avx2(sc_lo, sc_hi, sb + Q4_KX8_SCALES);
    pack6_avx2(mn_lo, mn_hi, sb + Q4_KX8_MINS);

    for (int p = 0; p < 4; p++) {
        __m256i v[8];
        for (int r = 0; r < 8; r++) {
            v[r] = qa_load(b[r]->qs + 32 * p);
        }
        qa_transpose8x32(v);
        for (int k = 0; k < 8; k++) {
            qa_stream32(sb + Q4_KX8_CODES + 256 * p + 32 * k, v[k]);
        }
    }
}

void cpu_q4_Kx8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst)
{
    if ((uintptr_t)dst % 32 != 0) { // the streaming stores need aligned super-blocks
        cpu_q4_Kx8_repack(src, src_row_stride, K, n_rows, dst);
        return;
    }
    const int64_t nsb = K / QK_K;
    const size_t group = cpu_q4_Kx8_group_bytes(K), share = 8 * src_row_stride / (size_t)nsb;
    for (int64_t g = 0; g < n_rows / 8; g++) {
        const char *rows[8];
        const char *next = qa_group_rows(src, src_row_stride, g, n_rows / 8, rows);
        for (int64_t i = 0; i < nsb; i++) {
            if (next) {
                qa_prefetch_range(next + (size_t)i * share, share);
            }
            const struct block_q4_K *b[8];
            for (int r = 0; r < 8; r++) {
                b[r] = (const struct block_q4_K *)(const void *)rows[r] + i;
            }
            repack_super_block(b, (uint8_t *)dst + (size_t)g * group + (size_t)i * Q4_KX8_SB_BYTES);
        }
    }
    _mm_sfence();
}
