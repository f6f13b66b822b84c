// backend/cpu/quant/x86/repack_q6_k_avx2.c: AVX2 kernel for Q6_K weights repacked in groups of
// 8 rows ("q6_Kx8", layout and result contract in quant.h). Per 16 elements, 3 loads give the
// 8 rows' codes as 4 registers of 8 rows x 4 bytes (11 ops, shared by the columns); each column
// broadcasts 4 activation bytes per register, maddubs (u8 codes x s8) gives int16 pairs, two are
// added in int16 and one madd with the rows' scale as an int16 pair puts scale * sum in the
// row's int32 lane. The -32 offset is one madd per 32 elements with 32 * scales and bsums.
// Bounds: |pair| <= 2 * 63 * 128 = 16128, two pairs <= 32256 fit int16 (even with y = -128);
// per super-block |sum sc * q * y| <= 16 * 128 * 16 * 63 * 128 < 2^28 and the offset term
// |32 * sum sc * bsum| <= 32 * 16 * 128 * 2048 = 2^27, so the int32 lanes never wrap.
// Also the load-time copy into this layout (cpu_q6_Kx8_repack_avx2, at the end).
#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/types.h"

static inline __m256i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

// nc is a constant at every call site, so the column loops unroll into registers.
static inline __attribute__((always_inline)) void gemm_cols(int nb, const uint8_t *base,
                                                            const uint16_t *dhead,
                                                            const void *const *vy, const int nc,
                                                            float *s)
{
    const __m256i m3f = _mm256_set1_epi8(0x3f), mc0 = _mm256_set1_epi8((char)0xc0);
    // int16 pair (s_2i, s_2i+1) of a row's lane -> (s_2i, s_2i) and (s_2i+1, s_2i+1)
    const __m256i dup0 = _mm256_set_epi64x(0x0d0c0d0c09080908, 0x0504050401000100,
                                           0x0d0c0d0c09080908, 0x0504050401000100);
    const __m256i dup1 = _mm256_set_epi64x(0x0f0e0f0e0b0a0b0a, 0x0706070603020302,
                                           0x0f0e0f0e0b0a0b0a, 0x0706070603020302);
    const struct block_q8_K *y[REPACK_MAX_COLS];
    __m256 acc[REPACK_MAX_COLS];
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) {
        y[c] = vy[c];
        acc[c] = _mm256_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        const uint8_t *rec = base + Q6_KX8_HEAD_BYTES(nb) + (size_t)b * Q6_KX8_BLOCK_BYTES;
        __m256i isum[REPACK_MAX_COLS];
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            isum[c] = _mm256_setzero_si256();
        }
        for (int i = 0; i < 8; i++) {
            // this eighth of the record, 2 KiB ahead (past a group's end: the next group's),
            // as it is read: the whole record (26 lines) asked for at once streamed 10-20 %
            // slower (docs/internals/performance.md, session 7); +63: an eighth does not
            // start on a line
            qa_prefetch_span(rec + i * (Q6_KX8_BLOCK_BYTES / 8), Q6_KX8_BLOCK_BYTES / 8 + 63);
            const __m256i sp = _mm256_cvtepi8_epi16(
                _mm_loadu_si128((const __m128i *)(const void *)(rec + 16 * i)));
            const __m256i sp32 = _mm256_slli_epi16(sp, 5); // |32 * sc| <= 4096
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const int j = 2 * i + h;
                const __m256i sc = _mm256_shuffle_epi8(sp, h ? dup1 : dup0);
                const uint8_t *cj = rec + Q6_KX8_SCALE_BYTES + 96 * j;
                const __m256i a = qa_load(cj), bb = qa_load(cj + 32), cc = qa_load(cj + 64);
                const __m256i q0 = _mm256_and_si256(a, m3f);
                const __m256i q1 = _mm256_and_si256(bb, m3f);
                const __m256i q2 = _mm256_and_si256(cc, m3f);
                // elements 12..15: 2 bits in the top of each chunk, low bits in the first
                __m256i q3 = _mm256_srli_epi16(_mm256_and_si256(a, mc0), 2);
                q3 = _mm256_srli_epi16(_mm256_or_si256(q3, _mm256_and_si256(bb, mc0)), 2);
                q3 = _mm256_srli_epi16(_mm256_or_si256(q3, _mm256_and_si256(cc, mc0)), 2);
                #pragma GCC unroll 4
                for (int c = 0; c < nc; c++) {
                    const int8_t *q = y[c][b].qs + 16 * j;
                    const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(q0, bcast4(q)),
                                                         _mm256_maddubs_epi16(q1, bcast4(q + 4)));
                    const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(q2, bcast4(q + 8)),
                                                         _mm256_maddubs_epi16(q3, bcast4(q + 12)));
                    isum[c] =
                        _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(p01, sc),
                                                                   _mm256_madd_epi16(p23, sc)));
                }
            }
            #pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m256i bs = bcast4(y[c][b].bsums + 2 * i);
                isum[c] = _mm256_sub_epi32(isum[c], _mm256_madd_epi16(sp32, bs));
            }
        }
        const __m256 dw =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(dhead + 8 * b)));
        #pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(y[c][b].d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), dd, acc[c]);
        }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < nc; c++) {
        _mm256_storeu_ps(s + 8 * c, acc[c]);
    }
}

void cpu_gemm_q6_Kx8_q8_K_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *aux, int nc, float *s)
{
    (void)aux;
    const int nb = K / QK_K;
    const uint8_t *base = w;
    const uint16_t *dhead = (const uint16_t *)(const void *)base;
    switch (nc) {
    case 1: gemm_cols(nb, base, dhead, y, 1, s); break;
    case 2: gemm_cols(nb, base, dhead, y, 2, s); break;
    case 3: gemm_cols(nb, base, dhead, y, 3, s); break;
    default: gemm_cols(nb, base, dhead, y, 4, s); break;
    }
}

// ---- the repack (the scalar cpu_q6_Kx8_repack defines it; this one writes the same bytes) ---

// Super-block b of 8 rows. Scales: an 8 x 8 transpose of int16 pairs. Codes: per run of 32
// elements (two sub-blocks), each row's 32 6-bit codes come from one load of ql and one of qh;
// within each 16-element lane, the 4th 4-byte word (codes 12..15) lends bits 2t..2t+1 to word t
// (bits 6..7), and an 8 x 8 transpose of 4-byte words puts the 8 rows of each word side by side.
static inline void repack_block(const struct block_q6_K *const x[8], uint8_t *rec)
{
    __m128i s[8], t[8];
    for (int r = 0; r < 8; r++) {
        s[r] = _mm_loadu_si128((const __m128i *)(const void *)x[r]->scales);
    }
    for (int i = 0; i < 8; i += 2) { // 16-bit pairs of rows i, i + 1
        t[i] = _mm_unpacklo_epi16(s[i], s[i + 1]);
        t[i + 1] = _mm_unpackhi_epi16(s[i], s[i + 1]);
    }
    for (int h = 0; h < 2; h++) { // 32-bit: rows 4h..4h+3, pairs 2 at a time
        s[4 * h] = _mm_unpacklo_epi32(t[4 * h], t[4 * h + 2]);     // pairs 0, 1 (4, 5)
        s[4 * h + 1] = _mm_unpackhi_epi32(t[4 * h], t[4 * h + 2]); // pairs 2, 3 (6, 7)
        s[4 * h + 2] = _mm_unpacklo_epi32(t[4 * h + 1], t[4 * h + 3]);
        s[4 * h + 3] = _mm_unpackhi_epi32(t[4 * h + 1], t[4 * h + 3]);
    }
    for (int i = 0; i < 4; i++) { // pairs 2i, 2i + 1: s[i] rows 0..3, s[4 + i] rows 4..7
        const __m128i a = s[i], b = s[4 + i];
        qa_stream16(rec + 32 * i, _mm_unpacklo_epi64(a, b));
        qa_stream16(rec + 32 * i + 16, _mm_unpackhi_epi64(a, b));
    }

    const __m256i m0f = _mm256_set1_epi8(0x0f), m03 = _mm256_set1_epi8(0x03);
    const __m256i spill_shift = _mm256_setr_epi32(0, 2, 4, 0, 0, 2, 4, 0);
    for (int half = 0; half < 2; half++) {
        for (int run = 0; run < 4; run++) { // elements 128 half + 32 run..+31: j = 8 half + 2 run
            __m256i v[8];
            for (int r = 0; r < 8; r++) {
                const __m256i ql = qa_load(x[r]->ql + 64 * half + 32 * (run & 1));
                const __m256i qh = qa_load(x[r]->qh + 32 * half);
                const __m256i nib = _mm256_and_si256(run < 2 ? ql : _mm256_srli_epi16(ql, 4), m0f);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * run), m03);
                const __m256i codes = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
                const __m256i spill = _mm256_and_si256(
                    _mm256_srlv_epi32(_mm256_shuffle_epi32(codes, 0xff), spill_shift), m03);
                v[r] = _mm256_or_si256(codes, _mm256_slli_epi32(spill, 6));
            }
            qa_transpose8x32(v);
            uint8_t *out = rec + Q6_KX8_SCALE_BYTES + 96 * (8 * half + 2 * run);
            for (int w = 0; w < 3; w++) {
                qa_stream32(out + 32 * w, v[w]);
                qa_stream32(out + 96 + 32 * w, v[4 + w]);
            }
        }
    }
}

void cpu_q6_Kx8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst)
{
    if ((uintptr_t)dst % 32 != 0) { // the streaming stores need aligned super-blocks
        cpu_q6_Kx8_repack(src, src_row_stride, K, n_rows, dst);
        return;
    }
    const int64_t nb = K / QK_K;
    const size_t group = cpu_q6_Kx8_group_bytes(K), share = 8 * src_row_stride / (size_t)nb;
    for (int64_t g = 0; g < n_rows / 8; g++) {
        uint8_t *base = (uint8_t *)dst + (size_t)g * group;
        const char *rows[8];
        const char *next = qa_group_rows(src, src_row_stride, g, n_rows / 8, rows);
        for (int64_t b = 0; b < nb; b++) {
            if (next) {
                qa_prefetch_range(next + (size_t)b * share, share);
            }
            const struct block_q6_K *x[8];
            for (int r = 0; r < 8; r++) {
                x[r] = (const struct block_q6_K *)(const void *)rows[r] + b;
            }
            qa_stream16(base + 16 * b, _mm_setr_epi16((short)x[0]->d, (short)x[1]->d, (short)x[2]->d,
                                                      (short)x[3]->d, (short)x[4]->d, (short)x[5]->d,
                                                      (short)x[6]->d, (short)x[7]->d));
            repack_block(x, base + Q6_KX8_HEAD_BYTES(nb) + (size_t)b * Q6_KX8_BLOCK_BYTES);
        }
        for (size_t pad = (size_t)nb * 16; pad < Q6_KX8_HEAD_BYTES(nb); pad += 16) {
            qa_stream16(base + pad, _mm_setzero_si128());
        }
    }
    _mm_sfence();
}
