// backend/cpu/ops/vec.c: scalar vector helpers shared by the reference kernels (dot products
// in 8 emulated lanes so their rounding resembles the SIMD variants, axpy, scale). The AVX2
// versions live in x86/vec_avx2.c; cpu_vec() picks a table per ISA.
#include "backend/cpu/cpu_int.h"

static float lanes_sum(const float a[8])
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

static float dot_f32(int64_t n, const float *x, const float *y)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            acc[j] += x[i + j] * y[i + j];
        }
    }
    float s = lanes_sum(acc);
    for (; i < n; i++) {
        s += x[i] * y[i];
    }
    return s;
}

static float dot_f16_f32(int64_t n, const uint16_t *x, const float *y)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            acc[j] += fp16_to_f32(x[i + j]) * y[i + j];
        }
    }
    float s = lanes_sum(acc);
    for (; i < n; i++) {
        s += fp16_to_f32(x[i]) * y[i];
    }
    return s;
}

static void tile4x3_f32(int64_t n, const float *const w[4], const float *const x[3],
                        float out[4][3])
{
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            out[r][c] = dot_f32(n, w[r], x[c]);
        }
    }
}

static void tile4x3_f16(int64_t n, const uint16_t *const w[4], const float *const x[3],
                        float out[4][3])
{
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            out[r][c] = dot_f16_f32(n, w[r], x[c]);
        }
    }
}

static void tile4x1_f32(int64_t n, const float *const w[4], const float *x, float out[4])
{
    for (int r = 0; r < 4; r++) {
        out[r] = dot_f32(n, w[r], x);
    }
}

static void tile4x1_f16(int64_t n, const uint16_t *const w[4], const float *x, float out[4])
{
    for (int r = 0; r < 4; r++) {
        out[r] = dot_f16_f32(n, w[r], x);
    }
}

static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] += a * x[i];
    }
}

static void axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] += a * fp16_to_f32(x[i]);
    }
}

static void scale_f32(int64_t n, float s, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] *= s;
    }
}

const struct cpu_vec cpu_vec_ref = {
    .dot_f32 = dot_f32,
    .dot_f16_f32 = dot_f16_f32,
    .tile4x3_f32 = tile4x3_f32,
    .tile4x3_f16 = tile4x3_f16,
    .tile4x1_f32 = tile4x1_f32,
    .tile4x1_f16 = tile4x1_f16,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .scale_f32 = scale_f32,
};

const struct cpu_vec *cpu_vec(enum cpu_isa isa)
{
    return isa == CPU_ISA_AVX2 ? &cpu_vec_avx2 : &cpu_vec_ref;
}
