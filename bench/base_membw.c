// bench/base_membw.c: this machine's memory read bandwidth, the roofline for decode (each
// generated token reads every weight once). Reads a buffer much larger than the caches with
// 1..N threads using 256-bit loads and reports the best GB/s of several passes.
// Usage: bench_base_membw [MiB (default 1024)] [max threads (default 2)]
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"

struct job {
    const uint8_t *p;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *bar;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(s, 0) ^ (uint64_t)_mm256_extract_epi64(s, 3);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    pthread_barrier_wait(j->bar);
    j->sum = read_avx2(j->p, j->n);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1024;
    int max_threads = argc > 2 ? atoi(argv[2]) : 2;
    if (mib < 64 || max_threads < 1 || max_threads > 64) {
        fprintf(stderr, "usage: %s [MiB >= 64] [threads 1..64]\n", argv[0]);
        return 2;
    }
    size_t n = mib << 20;
    uint8_t *buf = llem_aligned_alloc(64, n);
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i += 4096) { // touch every page, with varied content
        memset(buf + i, (int)(i >> 12), 4096);
    }
    printf("buffer %zu MiB\n", mib);
    uint64_t guard = 0;
    for (int nt = 1; nt <= max_threads; nt++) {
        double best = 0;
        for (int pass = 0; pass < 5; pass++) {
            pthread_t th[64];
            struct job jobs[64];
            pthread_barrier_t bar;
            pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
            size_t chunk = (n / (size_t)nt) & ~(size_t)127;
            for (int t = 0; t < nt; t++) {
                jobs[t] = (struct job){.p = buf + (size_t)t * chunk, .n = chunk, .bar = &bar};
                pthread_create(&th[t], NULL, worker, &jobs[t]);
            }
            double t0 = now_s();
            pthread_barrier_wait(&bar);
            for (int t = 0; t < nt; t++) {
                pthread_join(th[t], NULL);
                guard ^= jobs[t].sum;
            }
            double gbs = (double)(chunk * (size_t)nt) / (now_s() - t0) / 1e9;
            best = gbs > best ? gbs : best;
            pthread_barrier_destroy(&bar);
        }
        printf("read bandwidth, %d thread(s): %.1f GB/s\n", nt, best);
    }
    llem_aligned_free(buf);
    return guard == 42 ? 3 : 0; // keeps the reads observable
}
