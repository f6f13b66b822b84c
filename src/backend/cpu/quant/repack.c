// backend/cpu/quant/repack.c: weights repacked at load time into groups of 8 rows (layouts in
// quant.h), so one 32-byte load feeds 8 rows at once and a block's product is reduced to one
// integer per row without horizontal adds. This file holds the table of repacked kinds and
// the Q4_0 kind ("q4_0x8"): layout, the activation block sums it needs, and the scalar kernel
// that defines the result every SIMD kernel must reproduce bit for bit.
#include <math.h>
#include <string.h>

#include "backend/cpu/quant/quant.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

size_t cpu_q4_0x8_group_bytes(int64_t K)
{
    const size_t nb = (size_t)(K / QK4_0);
    const size_t bytes = nb * (Q4_0X8_CODE_BYTES + 8 * sizeof(uint16_t));
    return (bytes + 63) & ~(size_t)63;
}

void cpu_q4_0x8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst)
{
    const int64_t nb = K / QK4_0;
    const size_t group = cpu_q4_0x8_group_bytes(K);
    for (int64_t g = 0; g < n_rows / 8; g++) {
        uint8_t *out = (uint8_t *)dst + (size_t)g * group;
        for (int r = 0; r < 8; r++) {
            const struct block_q4_0 *row =
                (const void *)((const char *)src + (size_t)(g * 8 + r) * src_row_stride);
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *blk = out + cpu_q4_0x8_codes_at(b);
                for (int j = 0; j < 4; j++) {
                    memcpy(blk + 32 * j + 4 * r, row[b].qs + 4 * j, 4);
                }
                memcpy(out + cpu_q4_0x8_scales_at(nb, b) + 2 * r, &row[b].d, sizeof row[b].d);
            }
        }
        // the padding of the group is never read; zero it so the copy is deterministic
        size_t used = (size_t)nb * (Q4_0X8_CODE_BYTES + 16);
        memset(out + used, 0, group - used);
    }
}

void cpu_q4_0x8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block)
{
    const int64_t nb = K / QK4_0;
    const uint8_t *blk = (const uint8_t *)group + cpu_q4_0x8_codes_at(b);
    struct block_q4_0 *x = block;
    memcpy(&x->d, (const uint8_t *)group + cpu_q4_0x8_scales_at(nb, b) + 2 * r, sizeof x->d);
    for (int j = 0; j < 4; j++) {
        memcpy(x->qs + 4 * j, blk + 32 * j + 4 * r, 4);
    }
}

void cpu_q8_0_block_sums(const void *vy, int64_t K, int16_t *sum8)
{
    const struct block_q8_0 *y = vy;
    for (int64_t b = 0; b < K / QK8_0; b++) {
        int s = 0;
        for (int j = 0; j < QK8_0; j++) {
            s += y[b].qs[j];
        }
        sum8[b] = (int16_t)(8 * s); // |8 * s| <= 8 * 32 * 127 = 32512
    }
}

// The defining computation: per row r and column c, blocks in order,
// acc = fma((float)isum, d_w * d_y, acc) with isum = sum_k (q_k - 8) * y_k exact.
void cpu_gemm_q4_0x8_q8_0_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *ysum8, int nc, float *s)
{
    const int nb = K / QK4_0;
    const uint8_t *group = w;
    for (int c = 0; c < nc; c++) {
        const struct block_q8_0 *yc = y[c];
        float acc[8] = {0};
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = group + cpu_q4_0x8_codes_at(b);
            const uint16_t *scales = (const uint16_t *)(const void *)(group + cpu_q4_0x8_scales_at(nb, b));
            const float dy = fp16_to_f32(yc[b].d);
            for (int r = 0; r < 8; r++) {
                int isum = 0;
                for (int j = 0; j < 4; j++) {
                    for (int k = 0; k < 4; k++) {
                        const uint8_t q = blk[32 * j + 4 * r + k];
                        isum += (q & 0x0f) * yc[b].qs[4 * j + k];
                        isum += (q >> 4) * yc[b].qs[16 + 4 * j + k];
                    }
                }
                isum -= ysum8[c][b];
                const float dd = fp16_to_f32(scales[r]) * dy;
                acc[r] = fmaf((float)isum, dd, acc[r]);
            }
        }
        memcpy(s + 8 * c, acc, sizeof acc);
    }
}

// One line per kind (each kind's code lives in its own files).
static const struct cpu_repack_kind kinds[] = {
    {.type = GGML_TYPE_Q4_0,
     .name = "q4_0x8",
     .group_bytes = cpu_q4_0x8_group_bytes,
     .repack = cpu_q4_0x8_repack,
     .repack_avx2 = cpu_q4_0x8_repack_avx2,
     .unpack_block = cpu_q4_0x8_unpack_block,
     .aux = cpu_q8_0_block_sums,
     .aux_per = QK8_0,
     .gemm_ref = cpu_gemm_q4_0x8_q8_0_ref,
     .gemm_avx2 = cpu_gemm_q4_0x8_q8_0_avx2},
    {.type = GGML_TYPE_Q4_K,
     .name = "q4_Kx8",
     .group_bytes = cpu_q4_Kx8_group_bytes,
     .repack = cpu_q4_Kx8_repack,
     .unpack_block = cpu_q4_Kx8_unpack_block,
     .repack_avx2 = cpu_q4_Kx8_repack_avx2,
     .gemm_ref = cpu_gemm_q4_Kx8_q8_K_ref,
     .gemm_avx2 = cpu_gemm_q4_Kx8_q8_K_avx2},
    {.type = GGML_TYPE_Q6_K,
     .name = "q6_Kx8",
     .group_bytes = cpu_q6_Kx8_group_bytes,
     .repack = cpu_q6_Kx8_repack,
     .unpack_block = cpu_q6_Kx8_unpack_block,
     .repack_avx2 = cpu_q6_Kx8_repack_avx2,
     .gemm_ref = cpu_gemm_q6_Kx8_q8_K_ref,
     .gemm_avx2 = cpu_gemm_q6_Kx8_q8_K_avx2},
};

const struct cpu_repack_kind *cpu_repack_kind_of(uint32_t type)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i].type == type) {
            return &kinds[i];
        }
    }
    return NULL;
}

_Static_assert(sizeof kinds / sizeof kinds[0] == CPU_REPACK_KINDS, "CPU_REPACK_KINDS counts the table");

const struct cpu_repack_kind *cpu_repack_kind_at(int i)
{
    return i >= 0 && (size_t)i < sizeof kinds / sizeof kinds[0] ? &kinds[i] : NULL;
}
