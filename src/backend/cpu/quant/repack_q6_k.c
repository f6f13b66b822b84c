// backend/cpu/quant/repack_q6_k.c: the Q6_K kind of repacked weights ("q6_Kx8", layout in
// quant.h): the repack from ggml's Q6_K rows, and the scalar kernel that defines the result
// the AVX2 kernel (x86/repack_q6_k_avx2.c) reproduces bit for bit. Codes stay unsigned (0..63);
// the -32 offset is applied once per 16 elements through the Q8_K partner's block sums.
#include <math.h>
#include <string.h>

#include "backend/cpu/quant/quant.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

_Static_assert(Q6_KX8_BLOCK_BYTES == Q6_KX8_SCALE_BYTES + 16 * 3 * 32,
               "q6_Kx8: the scales, then 3 chunks of 8 rows x 4 bytes per 16 elements");
_Static_assert(Q6_KX8_BLOCK_BYTES % 64 == 0, "q6_Kx8 super-blocks stay cache-line aligned");

size_t cpu_q6_Kx8_group_bytes(int64_t K)
{
    const size_t nb = (size_t)(K / QK_K);
    return Q6_KX8_HEAD_BYTES(nb) + nb * Q6_KX8_BLOCK_BYTES;
}

// Four consecutive codes (q in 0..63, value d * scale * (q - 32)) of a Q6_K block, elements
// e..e+3 with e % 4 == 0, as the 4 bytes of a word. Each 128-element half has 64 ql bytes (low
// nibbles: elements 0..63, high: 64..127) and 32 qh bytes (2 bits for each of the 4 runs of
// 32), so the 4 codes' nibbles and bit pairs are 4 adjacent bytes of each: one load apiece,
// then per-byte shifts and masks (a bit shifted across a byte boundary is always masked off, so
// this holds for either byte order). Word-wise, the repack runs ~5x faster than code by code.
static inline __attribute__((always_inline)) uint32_t q6_K_code_word(const struct block_q6_K *x, int e)
{
    const int half = e / 128, run = (e % 128) / 32, l = e % 32;
    uint32_t ql, qh;
    memcpy(&ql, x->ql + 64 * half + l + (run & 1) * 32, 4);
    memcpy(&qh, x->qh + 32 * half + l, 4);
    const uint32_t nib = (run < 2 ? ql : ql >> 4) & 0x0f0f0f0fu;
    return nib | ((qh >> (2 * run)) & 0x03030303u) << 4;
}

void cpu_q6_Kx8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows, void *dst)
{
    const int64_t nb = K / QK_K;
    const size_t group = cpu_q6_Kx8_group_bytes(K);
    for (int64_t g = 0; g < n_rows / 8; g++) {
        uint8_t *base = (uint8_t *)dst + (size_t)g * group;
        uint16_t *dhead = (uint16_t *)(void *)base;
        for (int r = 0; r < 8; r++) {
            const struct block_q6_K *row =
                (const void *)((const char *)src + (size_t)(g * 8 + r) * src_row_stride);
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *rec = base + Q6_KX8_HEAD_BYTES(nb) + (size_t)b * Q6_KX8_BLOCK_BYTES;
                // per 16 elements: codes 0..11 in 3 chunks, each byte carrying in bits 6-7 two
                // bits of codes 12..15 (chunk t: bits 2t, 2t + 1)
                for (int j = 0; j < 16; j++) {
                    const uint32_t spill = q6_K_code_word(&row[b], 16 * j + 12);
                    for (int t = 0; t < 3; t++) {
                        const uint32_t w = q6_K_code_word(&row[b], 16 * j + 4 * t) |
                                           ((spill >> (2 * t)) & 0x03030303u) << 6;
                        memcpy(rec + Q6_KX8_SCALE_BYTES + 96 * j + 32 * t + 4 * r, &w, 4);
                    }
                }
                for (int i = 0; i < 8; i++) {
                    rec[16 * i + 2 * r] = (uint8_t)row[b].scales[2 * i];
                    rec[16 * i + 2 * r + 1] = (uint8_t)row[b].scales[2 * i + 1];
                }
                dhead[8 * b + r] = row[b].d;
            }
        }
        // the header's padding is never read; zero it so the copy is deterministic
        memset(base + (size_t)nb * 16, 0, Q6_KX8_HEAD_BYTES(nb) - (size_t)nb * 16);
    }
}

// The codes back from the 3 chunks of each sub-block, then into ql/qh as q6_K_code_word reads
// them (every bit of the block is used, so the bytes come back exactly).
void cpu_q6_Kx8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block)
{
    const int64_t nb = K / QK_K;
    const uint8_t *base = group;
    const uint8_t *rec = base + Q6_KX8_HEAD_BYTES(nb) + (size_t)b * Q6_KX8_BLOCK_BYTES;
    struct block_q6_K *x = block;
    memcpy(&x->d, base + 16 * b + 2 * r, 2);
    for (int i = 0; i < 8; i++) {
        x->scales[2 * i] = (int8_t)rec[16 * i + 2 * r];
        x->scales[2 * i + 1] = (int8_t)rec[16 * i + 2 * r + 1];
    }
    uint8_t q[QK_K];
    for (int j = 0; j < 16; j++) {
        for (int k = 0; k < 4; k++) {
            int spill = 0;
            for (int t = 0; t < 3; t++) {
                const uint8_t v = rec[Q6_KX8_SCALE_BYTES + 96 * j + 32 * t + 4 * r + k];
                q[16 * j + 4 * t + k] = v & 0x3f;
                spill |= (v >> 6) << (2 * t);
            }
            q[16 * j + 12 + k] = (uint8_t)spill;
        }
    }
    memset(x->ql, 0, sizeof x->ql);
    memset(x->qh, 0, sizeof x->qh);
    for (int e = 0; e < QK_K; e++) {
        const int half = e / 128, run = (e % 128) / 32, l = e % 32;
        x->ql[64 * half + l + (run & 1) * 32] |= (uint8_t)((q[e] & 15) << (run < 2 ? 0 : 4));
        x->qh[32 * half + l] |= (uint8_t)((q[e] >> 4) << (2 * run));
    }
}

// The defining computation: per row r and column c, super-blocks in order,
// acc = fmaf((float)isum, d_w * d_y, acc) with isum = sum_j sc_j * (sum_{k in j} q_k * y_k -
// 32 * bsum_j) exact in int32 (|isum| < 2^29: see the AVX2 kernel's bounds).
void cpu_gemm_q6_Kx8_q8_K_ref(int K, const void *w, const void *const *y, const int16_t *const *aux,
                              int nc, float *s)
{
    (void)aux;
    const int nb = K / QK_K;
    const uint8_t *base = w;
    const uint16_t *dhead = (const uint16_t *)(const void *)base;
    for (int c = 0; c < nc; c++) {
        const struct block_q8_K *yc = y[c];
        float acc[8] = {0};
        for (int b = 0; b < nb; b++) {
            const uint8_t *rec = base + Q6_KX8_HEAD_BYTES(nb) + (size_t)b * Q6_KX8_BLOCK_BYTES;
            const int8_t *sc = (const int8_t *)rec;
            for (int r = 0; r < 8; r++) {
                int isum = 0;
                for (int j = 0; j < 16; j++) {
                    int q[16] = {0};
                    for (int t = 0; t < 3; t++) {
                        for (int k = 0; k < 4; k++) {
                            const uint8_t v = rec[Q6_KX8_SCALE_BYTES + 96 * j + 32 * t + 4 * r + k];
                            q[4 * t + k] = v & 0x3f;
                            q[12 + k] |= (v >> 6) << (2 * t);
                        }
                    }
                    int sub = 0;
                    for (int k = 0; k < 16; k++) {
                        sub += q[k] * yc[b].qs[16 * j + k];
                    }
                    const int scale = sc[16 * (j / 2) + 2 * r + j % 2];
                    isum += scale * (sub - 32 * yc[b].bsums[j]);
                }
                const float dd = fp16_to_f32(dhead[8 * b + r]) * yc[b].d;
                acc[r] = fmaf((float)isum, dd, acc[r]);
            }
        }
        memcpy(s + 8 * c, acc, sizeof acc);
    }
}
