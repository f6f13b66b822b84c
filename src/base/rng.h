// base/rng.h: explicit-state pseudo-random numbers (xoshiro256**, seeded through splitmix64).
// No global state: each user (a sampler, the synthetic-model generator, a test) owns a struct
// rng, so runs are reproducible from the seed and threads never share a generator. Not
// thread-safe per instance; distinct instances are independent.
#pragma once
#include <stdint.h>

struct rng {
    uint64_t s[4];
};

// Seeds from one 64-bit value; every seed (including 0) gives a valid, distinct stream.
void rng_seed(struct rng *r, uint64_t seed);
// splitmix64 step: also useful alone to derive per-thread seeds from one seed.
uint64_t rng_splitmix64(uint64_t *state);
uint64_t rng_next_u64(struct rng *r);
uint32_t rng_next_u32(struct rng *r);
// Uniform in [0, 1): 24 random bits for float, 53 for double (never returns 1.0).
float rng_uniform_f32(struct rng *r);
double rng_uniform_f64(struct rng *r);
// Uniform integer in [0, bound) without modulo bias (Lemire's multiply-and-reject); bound 0
// returns 0.
uint64_t rng_bounded(struct rng *r, uint64_t bound);
// Standard normal N(0, 1) by Box-Muller (one value per call; the pair's twin is discarded to
// keep the state explicit and simple).
double rng_gaussian(struct rng *r);
