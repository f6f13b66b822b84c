// backend/cpu/quant/x86/repack_avx2.c: AVX2 kernel for Q4_0 weights repacked in groups of 8
// rows (layout and result contract in quant.h). Per block, the 4 code chunks of a group are
// unpacked once into 8 registers (low and high nibbles of 8 rows x 4 bytes); each activation
// column broadcasts its matching 4 bytes, maddubs gives 8 rows x 2 int16 pair sums, and the 8
// chunks are added in int16 before one madd, so a row's block product lands whole in its lane.
// |pair| <= 2 * 15 * 127 = 3810 and 8 pairs <= 30480 fit int16; y never holds -128.
// Also the load-time copy into this layout (cpu_q4_0x8_repack_avx2, at the end).
#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/types.h"

static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

// One block of the 8 rows against nc activation columns: the 4 code chunks are unpacked once
// into 8 registers and every column reuses them.
static inline __attribute__((always_inline)) void
gemm_block(const uint8_t *blk, const uint16_t *scales, const struct block_q8_0 *const *y,
           const int16_t *const *ysum8, int b, const int nc, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256i lo[4], hi[4];
    // unrolled, or GCC keeps lo/hi on the stack: 8 stores and 8 reloads per block
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m256i w = qa_load(blk + 32 * j);
        lo[j] = _mm256_and_si256(w, m4);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)scales));
#pragma GCC unroll 4
    for (int c = 0; c < nc; c++) {
        const int8_t *q = y[c][b].qs;
        __m256i p = _mm256_maddubs_epi16(lo[0], bcast4(q));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[0], bcast4(q + 16)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo[1], bcast4(q + 4)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[1], bcast4(q + 20)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo[2], bcast4(q + 8)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[2], bcast4(q + 24)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo[3], bcast4(q + 12)));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[3], bcast4(q + 28)));
        __m256i isum = _mm256_madd_epi16(p, ones);
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(ysum8[c][b]));
        const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(qa_f16(y[c][b].d)));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), dd, acc[c]);
    }
}

// nc is a constant at every call site, so the column loops unroll into registers. The group is
// read unit by unit (4 blocks' codes, then their scales), each unit asked for QA_PREFETCH_AHEAD
// bytes early: past the group's end that is the next group's first units.
static inline __attribute__((always_inline)) void
gemm_cols(int nb, const uint8_t *group, const void *const *vy, const int16_t *const *ysum8,
          const int nc, float *s)
{
    const struct block_q8_0 *y[REPACK_MAX_COLS];
    __m256 acc[REPACK_MAX_COLS];
    for (int c = 0; c < nc; c++) {
        y[c] = vy[c];
        acc[c] = _mm256_setzero_ps();
    }
    int b = 0;
    for (; b + Q4_0X8_UNIT_BLOCKS <= nb; b += Q4_0X8_UNIT_BLOCKS) {
        const uint8_t *unit = group + cpu_q4_0x8_codes_at(b);
        qa_prefetch_span(unit, Q4_0X8_UNIT_BYTES);
        const uint16_t *scales = (const uint16_t *)(const void *)(group + cpu_q4_0x8_scales_at(nb, b));
#pragma GCC unroll 4
        for (int i = 0; i < Q4_0X8_UNIT_BLOCKS; i++) {
            gemm_block(unit + i * Q4_0X8_CODE_BYTES, scales + 8 * i, y, ysum8, b + i, nc, acc);
        }
    }
    for (; b < nb; b++) { // a last unit of fewer blocks
        gemm_block(group + cpu_q4_0x8_codes_at(b),
                   (const uint16_t *)(const void *)(group + cpu_q4_0x8_scales_at(nb, b)), y, ysum8,
                   b, nc, acc);
    }
    for (int c = 0; c < nc; c++) {
        _mm256_storeu_ps(s + 8 * c, acc[c]);
    }
}

void cpu_gemm_q4_0x8_q8_0_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *ysum8, int nc, float *s)
{
    const int nb = K / QK4_0;
    switch (nc) {
    case 1: gemm_cols(nb, w, y, ysum8, 1, s); break;
    case 2: gemm_cols(nb, w, y, ysum8, 2, s); break;
    case 3: gemm_cols(nb, w, y, ysum8, 3, s); break;
    default: gemm_cols(nb, w, y, ysum8, 4, s); break;
    }
}

// ---- the repack (the scalar cpu_q4_0x8_repack defines it; this one writes the same bytes) ---

// Blocks b and b + 1 (or b alone when `pair` is false) of the 8 rows: each row's 16 code bytes
// per block are 4 words, and an 8 x 8 transpose of words puts the 8 rows of each word side by
// side (words 0..3: block b's chunks, 4..7: block b + 1's).
static inline void repack_blocks(const struct block_q4_0 *const x[8], int64_t b, bool pair,
                                 uint8_t *group)
{
    __m256i v[8];
    for (int r = 0; r < 8; r++) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)x[r][b].qs);
        const __m128i hi =
            pair ? _mm_loadu_si128((const __m128i *)(const void *)x[r][b + 1].qs) : lo;
        v[r] = _mm256_set_m128i(hi, lo);
    }
    qa_transpose8x32(v);
    uint8_t *blk = group + cpu_q4_0x8_codes_at(b); // b even: b + 1 follows in the same unit
    for (int j = 0; j < 4; j++) {
        qa_stream32(blk + 32 * j, v[j]);
        if (pair) {
            qa_stream32(blk + Q4_0X8_CODE_BYTES + 32 * j, v[4 + j]);
        }
    }
}

void cpu_q4_0x8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst)
{
    if ((uintptr_t)dst % 32 != 0) { // the streaming stores need aligned groups
        cpu_q4_0x8_repack(src, src_row_stride, K, n_rows, dst);
        return;
    }
    const int64_t nb = K / QK4_0;
    const size_t group = cpu_q4_0x8_group_bytes(K), share = 16 * src_row_stride / (size_t)nb;
    for (int64_t g = 0; g < n_rows / 8; g++) {
        uint8_t *out = (uint8_t *)dst + (size_t)g * group;
        const char *rows[8];
        const char *next = qa_group_rows(src, src_row_stride, g, n_rows / 8, rows);
        const struct block_q4_0 *x[8];
        for (int r = 0; r < 8; r++) {
            x[r] = (const void *)rows[r];
        }
        for (int64_t b = 0; b < nb; b += 2) {
            if (next) { // two blocks' share of the next group
                qa_prefetch_range(next + (size_t)(b / 2) * share, share);
            }
            const bool pair = b + 1 < nb;
            repack_blocks(x, b, pair, out);
            for (int64_t k = b; k < b + (pair ? 2 : 1); k++) {
                qa_stream16(out + cpu_q4_0x8_scales_at(nb, k),
                            _mm_setr_epi16((short)x[0][k].d, (short)x[1][k].d, (short)x[2][k].d,
                                           (short)x[3][k].d, (short)x[4][k].d, (short)x[5][k].d,
                                           (short)x[6][k].d, (short)x[7][k].d));
            }
        }
        for (size_t pad = (size_t)nb * (Q4_0X8_CODE_BYTES + 16); pad < group; pad += 16) {
            qa_stream16(out + pad, _mm_setzero_si128());
        }
    }
    _mm_sfence();
}
