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

// ---- weights repacked in groups of 8 rows (repack.c; x86/repack_avx2.c) ---------------------
// A repacked weight is a run of groups, one per 8 consecutive rows, each laid out so one
// 32-byte load feeds all 8 rows and a block's product lands whole in the row's int32 lane (no
// horizontal adds). A kind's gemm computes, for the group's 8 rows and nc <= REPACK_MAX_COLS
// activation rows converted to the weight's vec_dot partner, s[8c + r] = dot(row r, column c);
// aux[c] is the column's auxiliary int16 data (kind->aux; NULL when the kind has none). Each
// element is a fixed chain of operations over the row's blocks in order, whatever nc is, and
// the AVX2 kernel equals the scalar one bit for bit: batches never change a result.
#define REPACK_ROWS 8
#define REPACK_MAX_COLS 4
typedef void (*cpu_repack_gemm_fn)(int K, const void *w, const void *const *y,
                                   const int16_t *const *aux, int nc, float *s);
struct cpu_repack_kind {
    uint32_t type;                     // the weight type it applies to
    const char *name;                  // "q4_0x8"
    size_t (*group_bytes)(int64_t K);  // bytes of one group (a multiple of 64)
    // Repacks n_rows (a multiple of 8) rows of K elements, src_row_stride bytes apart, into
    // n_rows / 8 consecutive groups at dst.
    void (*repack)(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows, void *dst);
    // (optional) the same bytes with AVX2: the load-time copy the backend runs
    void (*repack_avx2)(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                        void *dst);
    // (optional) The inverse, one block at a time: writes block b of row r (0..7) of a group
    // exactly as the original row held it. get_rows of a repacked token embedding reads rows
    // this way; a kind without it has its rows read from the plain tensor (the file).
    void (*unpack_block)(const void *group, int64_t K, int r, int64_t b, void *block);
    void (*aux)(const void *y, int64_t K, int16_t *out); // (optional) per activation row
    int64_t aux_per;                                     // elements of K per aux value
                                                         // (kinds without aux: none; K-quants
                                                         // take their sums from Q8_K's bsums)
    cpu_repack_gemm_fn gemm_ref, gemm_avx2;
};
// The repacked layout for weight type `type`, or NULL when it has none.
const struct cpu_repack_kind *cpu_repack_kind_of(uint32_t type);
const struct cpu_repack_kind *cpu_repack_kind_at(int i); // i-th kind, NULL past the last
enum { CPU_REPACK_KINDS = 3 };                           // how many there are (repack.c)

// Q4_0 -> "q4_0x8". One group (nb = K / 32 blocks) is a run of units of up to 4 blocks; a
// unit of n blocks is n * 128 bytes of codes, then n * 8 f16 scales (its block i, row r at
// [8i + r]); the group is padded to 64 bytes. A full unit is 576 bytes, 9 cache lines, so decode
// reads a group front to back as one stream. (Codes first and all scales after them made a
// second stream that restarted at every group; one thread streamed 30 % slower:
// docs/internals/performance.md, session 7.) Block b's codes are 4 chunks of 32 bytes: chunk j
// holds, for row r at bytes [32j + 4r, 32j + 4r + 4), that row's qs[4j..4j+3]: low nibbles are
// elements 4j..4j+3, high nibbles 16+4j..19+4j. aux = 8 x each Q8_0 block's code sum. Per row
// and column, blocks in order: acc = fma((float)isum, d_w * d_y, acc), isum = sum (q - 8) * y
// exact.
#define Q4_0X8_CODE_BYTES 128
#define Q4_0X8_UNIT_BLOCKS 4
#define Q4_0X8_UNIT_BYTES (Q4_0X8_UNIT_BLOCKS * (Q4_0X8_CODE_BYTES + 16))
// Byte offsets in a group of nb blocks of block b's codes and of its 8 scales.
static inline size_t cpu_q4_0x8_codes_at(int64_t b)
{
    return (size_t)(b / Q4_0X8_UNIT_BLOCKS) * Q4_0X8_UNIT_BYTES +
           (size_t)(b % Q4_0X8_UNIT_BLOCKS) * Q4_0X8_CODE_BYTES;
}
static inline size_t cpu_q4_0x8_scales_at(int64_t nb, int64_t b)
{
    const int64_t first = b - b % Q4_0X8_UNIT_BLOCKS; // the unit's first block
    const int64_t n = nb - first < Q4_0X8_UNIT_BLOCKS ? nb - first : Q4_0X8_UNIT_BLOCKS;
    return (size_t)(b / Q4_0X8_UNIT_BLOCKS) * Q4_0X8_UNIT_BYTES + (size_t)n * Q4_0X8_CODE_BYTES +
           (size_t)(b % Q4_0X8_UNIT_BLOCKS) * 8 * sizeof(uint16_t);
}
size_t cpu_q4_0x8_group_bytes(int64_t K);
void cpu_q4_0x8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst);
void cpu_q4_0x8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst);
void cpu_q4_0x8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block);
void cpu_q8_0_block_sums(const void *y, int64_t K, int16_t *sum8);
void cpu_gemm_q4_0x8_q8_0_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *aux, int nc, float *s);
void cpu_gemm_q4_0x8_q8_0_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *aux, int nc, float *s);

// Q4_K -> "q4_Kx8" (repack_q4_k.c, x86/repack_q4_k_avx2.c). One group is K / 256 super-blocks
// of Q4_KX8_SB_BYTES (1152 = 18 cache lines, the 8 rows' original bytes). Super-block i of the
// 8 rows: d[8] and dmin[8] f16 (row r at [r]); the 64 6-bit scales, then the 64 mins, each
// packed in 48 bytes (32 bytes of low nibbles, 16 of 2-bit highs: AVX2 unpacks them in a few
// shifts); then 4 sub-block pairs of 256 bytes: pair p's chunk k (32 bytes) holds, for row r
// at [32k + 4r, 32k + 4r + 4), qs[32p + 4k..+3]: low nibbles are elements 64p + 4k..+3
// (sub-block 2p), high nibbles 64p + 32 + 4k..+3 (2p + 1). Partner Q8_K (its bsums give the
// min terms); no aux. Per row and column, super-blocks in order:
// acc = fma((float)isum, d_w * d_y, acc); acc = fma(-(float)msum, dmin_w * d_y, acc), with
// isum = sum_j sc_j * (sub-block j's code dot), msum = sum_j mn_j * (y's sum over sub-block j).
#define Q4_KX8_D 0
#define Q4_KX8_DMIN 16
#define Q4_KX8_SCALES 32
#define Q4_KX8_MINS 80
#define Q4_KX8_CODES 128
#define Q4_KX8_SB_BYTES 1152
// The 6-bit value of sub-block j (0..7), row r (0..7) in a packed 48-byte array p: low nibble in
// p[pos] bits 4 * (j / 4).., high 2 bits in p[32 + pos % 16] bits 4 * (j / 4) + 2 * (pos / 16)..,
// with pos = 16 * (r / 4) + 4 * (j % 4) + r % 4 (a 128-bit lane per 4 rows, so in-lane shuffles
// pick any sub-block pair).
size_t cpu_q4_Kx8_group_bytes(int64_t K);
void cpu_q4_Kx8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst);
void cpu_q4_Kx8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block);
void cpu_q4_Kx8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst);
void cpu_gemm_q4_Kx8_q8_K_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *aux, int nc, float *s);
void cpu_gemm_q4_Kx8_q8_K_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *aux, int nc, float *s);

// Q6_K -> "q6_Kx8" (repack_q6_k.c, x86/repack_q6_k_avx2.c). One group is the 8 rows' f16 d of
// each super-block (b, row r at [8b + r]) padded to 64 bytes (Q6_KX8_HEAD_BYTES: read first, so
// the previous group's prefetch brings it), then K / 256 super-blocks of Q6_KX8_BLOCK_BYTES
// (1664 = 26 x 64), each 128 bytes of int8 scales (pair i, row r at [16i + 2r] = sc[2i],
// [16i + 2r + 1] = sc[2i + 1]) then 16 sub-blocks j of 96 bytes of codes. Sub-block j's chunk t
// (t < 3, 32 bytes) holds, for row r at [32t + 4r, 32t + 4r + 4), the 6-bit codes (q in 0..63)
// of elements 16j + 4t..+3 in bits 0..5, and in bits 6..7 bits 2t..2t+1 of the codes of
// elements 16j + 12..15. Partner Q8_K (its bsums apply the -32); no aux. Per row and column,
// super-blocks in order: acc = fma((float)isum, d_w * d_y, acc), isum = sum_j sc_j *
// (sum_{k in j} q_k * y_k - 32 * bsum_j) exact.
#define Q6_KX8_HEAD_BYTES(nb) (((size_t)(nb) * 16 + 63) & ~(size_t)63)
#define Q6_KX8_SCALE_BYTES 128
#define Q6_KX8_BLOCK_BYTES 1664
size_t cpu_q6_Kx8_group_bytes(int64_t K);
void cpu_q6_Kx8_repack(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                       void *dst);
void cpu_q6_Kx8_unpack_block(const void *group, int64_t K, int r, int64_t b, void *block);
void cpu_q6_Kx8_repack_avx2(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows,
                            void *dst);
void cpu_gemm_q6_Kx8_q8_K_ref(int K, const void *w, const void *const *y,
                              const int16_t *const *aux, int nc, float *s);
void cpu_gemm_q6_Kx8_q8_K_avx2(int K, const void *w, const void *const *y,
                               const int16_t *const *aux, int nc, float *s);

// Activation quantizers, byte-identical to tensor_quant_q8_0 / _q8_1 / _q8_K (tensor/types.h)
// for every finite input (the tests check it), n % block == 0.
void cpu_quant_q8_0_avx2(const float *x, void *y, int64_t n);
void cpu_quant_q8_1_avx2(const float *x, void *y, int64_t n);
void cpu_quant_q8_K_avx2(const float *x, void *y, int64_t n);
