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

// The 256 codes (q in 0..63, value d * scale * (q - 32)) of one Q6_K block in element order:
// each 128-element half has 64 ql bytes (low nibbles: elements 0..63, high: 64..127) and 32 qh
// bytes (2 bits for each of the 4 runs of 32).
static void q6_K_codes(const struct block_q6_K *x, uint8_t codes[QK_K])
{
    for (int e = 0; e < QK_K; e++) {
        const int k = e / 128, run = (e % 128) / 32, l = e % 32;
        const uint8_t qlb = x->ql[64 * k + l + (run & 1) * 32];
        const int nib = run < 2 ? (qlb & 0x0f) : (qlb >> 4);
        const int hi = (x->qh[32 * k + l] >> (2 * run)) & 3;
        codes[e] = (uint8_t)(nib | hi << 4);
    }
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
                uint8_t codes[QK_K];
                q6_K_codes(&row[b], codes);
                for (int j = 0; j < 16; j++) {
                    for (int t = 0; t < 3; t++) {
                        for (int k = 0; k < 4; k++) {
                            const int spill = (codes[16 * j + 12 + k] >> (2 * t)) & 3;
                            rec[Q6_KX8_SCALE_BYTES + 96 * j + 32 * t + 4 * r + k] =
                                (uint8_t)(codes[16 * j + 4 * t + k] | spill << 6);
                        }
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
