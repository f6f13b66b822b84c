// backend/cpu/quant/quant.h: quantized dot-product kernels for mul_mat. For each weight type,
// vec_dot(n, s, x, y) computes s = dot(x, y) over n elements, x a row of weight blocks and y
// the activations converted to the type's partner (tensor traits' vec_dot_type). Scalar
// references (dot_ref.c) follow ggml's math: integer dot products inside a block, the block's
// scales applied once per block; x86/*_avx2.c compute the same integers in SIMD registers.
// All functions are pure, thread-safe, and need n % block == 0 (n > 0). Nothing aligned.
#pragma once
#include <stddef.h>
#include <stdint.h>

// ---- scalar references (dot_ref.c) ----------------------------------------------------------
void cpu_vec_dot_q4_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q4_1_q8_1_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_1_q8_1_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q8_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_iq4_nl_q8_0_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_mxfp4_q8_0_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q2_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q3_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q4_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q6_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_iq4_xs_q8_K_ref(int n, float *s, const void *x, const void *y);
// F16 x F16 and BF16 x BF16 (products summed in double, as ggml's scalar path).
void cpu_vec_dot_f16_ref(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_bf16_ref(int n, float *s, const void *x, const void *y);

// ---- AVX2 + FMA (+F16C) (x86/*_avx2.c; call only when cpu features report AVX2/FMA/F16C) ----
void cpu_vec_dot_q4_0_q8_0_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q4_1_q8_1_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_0_q8_0_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_1_q8_1_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q8_0_q8_0_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_iq4_nl_q8_0_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_mxfp4_q8_0_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q2_K_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q3_K_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q4_K_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q5_K_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_q6_K_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_iq4_xs_q8_K_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_f16_avx2(int n, float *s, const void *x, const void *y);
void cpu_vec_dot_bf16_avx2(int n, float *s, const void *x, const void *y);

// Prefill tiles: s[r * nc + c] = dot(x[r], y[c]) for 4 weight rows and nc activation rows,
// 2 <= nc <= QUANT_TILE_MAX_COLS, each equal bit for bit to the matching vec_dot above
// (pointers may repeat).
#define QUANT_TILE_MAX_COLS 24
void cpu_vec_dot_tile_q4_0_q8_0_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s);
void cpu_vec_dot_tile_q8_0_q8_0_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s);
void cpu_vec_dot_tile_q4_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s);
void cpu_vec_dot_tile_q5_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s);
void cpu_vec_dot_tile_q6_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s);

// ---- Q4_0 repacked in groups of 8 rows (repack.c, x86/repack_avx2.c) ----------------------
// One group (rows 8g..8g+7 of a weight with K columns, nb = K / 32 blocks) is nb * 128 bytes
// of codes, then nb * 8 f16 scales (block b, row r at [8b + r]), padded to 64 bytes. Block b's
// codes are 4 chunks of 32 bytes: chunk j holds, for row r at bytes [32j + 4r, 32j + 4r + 4),
// that row's qs[4j .. 4j+3]: low nibbles are elements 4j..4j+3, high nibbles 16+4j..19+4j.
// The kernels compute, for the 8 rows and nc <= 4 activation rows (Q8_0, with ysum8 = 8 x the
// code sum of each block, from cpu_q8_0_block_sums), s[8c + r] = the chain over blocks in order
// acc = fma((float)isum, d_w * d_y, acc), isum = sum (q - 8) * y exact; so every element is
// the same for any nc, any grid and any ISA.
#define Q4_0X8_CODE_BYTES 128
#define Q4_0X8_MAX_COLS 4
size_t cpu_q4_0x8_group_bytes(int64_t K); // bytes of one group (a multiple of 64)
// Repacks n_rows (a multiple of 8) Q4_0 rows of K elements, src_row_stride bytes apart, into
// n_rows / 8 consecutive groups at dst.
void cpu_q4_0x8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst);
void cpu_q8_0_block_sums(const void *y, int64_t K, int16_t *sum8);
typedef void (*cpu_gemm_q4_0x8_fn)(int K, const void *w, const void *const *y,
                                   const int16_t *const *ysum8, int nc, float *s);
void cpu_gemm_q4_0x8_q8_0_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *ysum8, int nc, float *s);
void cpu_gemm_q4_0x8_q8_0_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *ysum8, int nc, float *s);

// Activation quantizers, byte-identical to tensor_quant_q8_0 / _q8_1 / _q8_K (tensor/types.h)
// for every finite input (the tests check it), n % block == 0.
void cpu_quant_q8_0_avx2(const float *x, void *y, int64_t n);
void cpu_quant_q8_1_avx2(const float *x, void *y, int64_t n);
void cpu_quant_q8_K_avx2(const float *x, void *y, int64_t n);
