// backend/cpu/quant/repack_q4_k.c: the Q4_K kind of repacked weights ("q4_Kx8", layout in
// quant.h). A super-block of a group of 8 rows is exactly the 8 rows' original bytes (decode is
// DRAM-bound: no byte more), with the codes interleaved as in q4_0x8 so one 32-byte load feeds
// 8 rows, and the 6-bit scales and mins regrouped so AVX2 unpacks all 64 in a few shifts. The
// scalar gemm here defines the result bit for bit; x86/repack_q4_k_avx2.c reproduces it.
#include <math.h>
#include <string.h>

#include "backend/cpu/quant/quant.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

_Static_assert(Q4_KX8_SCALES + 48 == Q4_KX8_MINS && Q4_KX8_MINS + 48 == Q4_KX8_CODES &&
                   Q4_KX8_CODES + 4 * 256 == Q4_KX8_SB_BYTES,
               "q4_Kx8 super-block layout");
_Static_assert(Q4_KX8_SB_BYTES == 8 * sizeof(struct block_q4_K) && Q4_KX8_SB_BYTES % 64 == 0,
               "the original bytes, in whole cache lines");

size_t cpu_q4_Kx8_group_bytes(int64_t K)
{
    return (size_t)(K / QK_K) * Q4_KX8_SB_BYTES;
}

// Where sub-block j, row r of the 64 6-bit values lies in a packed 48-byte array (quant.h).
static int packed_pos(int j, int r)
{
    return 16 * (r / 4) + 4 * (j % 4) + r % 4;
}

// Writes every byte once from the values it holds (no clear-then-or pass): byte pos < 32 is
// the low nibbles of sub-blocks j and j + 4 of one row; byte 32 + q gathers the 2-bit highs of
// those two sub-blocks for rows q % 4 and 4 + q % 4. The same layout as packed_pos describes.
static void pack6(uint8_t v[8][8], uint8_t *p)
{
    for (int pos = 0; pos < 32; pos++) {
        const int j = (pos % 16) / 4, r = 4 * (pos / 16) + pos % 4;
        p[pos] = (uint8_t)((v[j][r] & 15) | (v[j + 4][r] & 15) << 4);
    }
    for (int q = 0; q < 16; q++) {
        const int j = q / 4, r0 = q % 4, r1 = 4 + q % 4;
        p[32 + q] = (uint8_t)((v[j][r0] >> 4) | (v[j][r1] >> 4) << 2 | (v[j + 4][r0] >> 4) << 4 |
                              (v[j + 4][r1] >> 4) << 6);
    }
}

static int unpack6(const uint8_t *p, int j, int r)
{
    const int pos = packed_pos(j, r), half = j / 4;
    const int hi = (p[32 + pos % 16] >> (4 * half + 2 * (pos / 16))) & 3;
    return ((p[pos] >> (4 * half)) & 15) | hi << 4;
}

// The 8 6-bit scales and mins packed in a block_q4_K's scales[12] (ggml's get_scale_min_k4).
static void unpack_scales_mins(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void cpu_q4_Kx8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst)
{
    const int64_t nsb = K / QK_K;
    const size_t group = cpu_q4_Kx8_group_bytes(K);
    for (int64_t g = 0; g < n_rows / 8; g++) {
        for (int64_t i = 0; i < nsb; i++) {
            uint8_t *sb = (uint8_t *)dst + (size_t)g * group + (size_t)i * Q4_KX8_SB_BYTES;
            uint8_t sc[8][8], mn[8][8]; // [sub-block][row]
            for (int r = 0; r < 8; r++) {
                const char *row = (const char *)src + (size_t)(g * 8 + r) * src_row_stride;
                const struct block_q4_K *b = (const struct block_q4_K *)(const void *)row + i;
                memcpy(sb + Q4_KX8_D + 2 * r, &b->d, 2);
                memcpy(sb + Q4_KX8_DMIN + 2 * r, &b->dmin, 2);
                uint8_t s8[8], m8[8];
                unpack_scales_mins(b->scales, s8, m8);
                for (int j = 0; j < 8; j++) {
                    sc[j][r] = s8[j];
                    mn[j][r] = m8[j];
                }
                for (int p = 0; p < 4; p++) {
                    for (int k = 0; k < 8; k++) {
                        uint8_t *chunk = sb + Q4_KX8_CODES + 256 * p + 32 * k;
                        memcpy(chunk + 4 * r, b->qs + 32 * p + 4 * k, 4);
                    }
                }
            }
            pack6(sc, sb + Q4_KX8_SCALES);
            pack6(mn, sb + Q4_KX8_MINS);
        }
    }
}

// The 12 scale bytes are get_scale_min_k4's packing of sc and mn, every bit used, so packing
// the unpacked values back gives the original bytes.
void cpu_q4_Kx8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block)
{
    (void)K;
    const uint8_t *sb = (const uint8_t *)group + (size_t)b * Q4_KX8_SB_BYTES;
    struct block_q4_K *x = block;
    memcpy(&x->d, sb + Q4_KX8_D + 2 * r, 2);
    memcpy(&x->dmin, sb + Q4_KX8_DMIN + 2 * r, 2);
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = unpack6(sb + Q4_KX8_SCALES, j, r);
        mn[j] = unpack6(sb + Q4_KX8_MINS, j, r);
    }
    for (int j = 0; j < 4; j++) {
        x->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        x->scales[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        x->scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    for (int p = 0; p < 4; p++) {
        for (int k = 0; k < 8; k++) {
            memcpy(x->qs + 32 * p + 4 * k, sb + Q4_KX8_CODES + 256 * p + 32 * k + 4 * r, 4);
        }
    }
}

// The defining computation: per row r and column c, super-blocks in order,
//   acc = fmaf((float)isum, d_w * d_y, acc);  acc = fmaf(-(float)msum, dmin_w * d_y, acc)
// with isum = sum_j sc[j] * sum_l q[32j + l] * y[32j + l] and
// msum = sum_j mn[j] * (bsums[2j] + bsums[2j + 1]), both exact integers
// (|isum| <= 8 * 63 * 32 * 15 * 127 < 2^25, |msum| <= 8 * 63 * 32 * 127 < 2^21).
void cpu_gemm_q4_Kx8_q8_K_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *aux, int nc, float *s)
{
    (void)aux;
    const int nsb = K / QK_K;
    for (int c = 0; c < nc; c++) {
        const struct block_q8_K *yc = y[c];
        float acc[8] = {0};
        for (int i = 0; i < nsb; i++) {
            const uint8_t *sb = (const uint8_t *)w + (size_t)i * Q4_KX8_SB_BYTES;
            for (int r = 0; r < 8; r++) {
                int isum = 0, msum = 0;
                for (int j = 0; j < 8; j++) {
                    // sub-block j: low (j even) or high (j odd) nibbles of pair j / 2
                    const uint8_t *pair = sb + Q4_KX8_CODES + 256 * (j / 2) + 4 * r;
                    const int shift = 4 * (j % 2);
                    int g = 0;
                    for (int k = 0; k < 8; k++) {
                        for (int t = 0; t < 4; t++) {
                            g += ((pair[32 * k + t] >> shift) & 15) * yc[i].qs[32 * j + 4 * k + t];
                        }
                    }
                    const int ysum = yc[i].bsums[2 * j] + yc[i].bsums[2 * j + 1];
                    isum += unpack6(sb + Q4_KX8_SCALES, j, r) * g;
                    msum += unpack6(sb + Q4_KX8_MINS, j, r) * ysum;
                }
                uint16_t d, dmin;
                memcpy(&d, sb + Q4_KX8_D + 2 * r, 2);
                memcpy(&dmin, sb + Q4_KX8_DMIN + 2 * r, 2);
                const float dd = fp16_to_f32(d) * yc[i].d;
                const float dm = fp16_to_f32(dmin) * yc[i].d;
                acc[r] = fmaf((float)isum, dd, acc[r]);
                acc[r] = fmaf(-(float)msum, dm, acc[r]);
            }
        }
        memcpy(s + 8 * c, acc, sizeof acc);
    }
}
