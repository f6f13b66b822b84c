// base/rng.c: xoshiro256** (Blackman & Vigna, public domain algorithm) with splitmix64 seeding.
#include "base/rng.h"

#include <math.h>

uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = rng_splitmix64(&st);
    }
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next_u64(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t rng_next_u32(struct rng *r)
{
    return (uint32_t)(rng_next_u64(r) >> 32); // high bits are the best ones
}

float rng_uniform_f32(struct rng *r)
{
    return (float)(rng_next_u64(r) >> 40) * 0x1.0p-24f;
}

double rng_uniform_f64(struct rng *r)
{
    return (double)(rng_next_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t rng_bounded(struct rng *r, uint64_t bound)
{
    if (bound == 0) {
        return 0;
    }
    // Lemire: the high half of x * bound is uniform once the low half falls outside the
    // short leftover range [0, 2^64 mod bound).
    unsigned __int128 m = (unsigned __int128)rng_next_u64(r) * bound;
    uint64_t lo = (uint64_t)m;
    if (lo < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (lo < threshold) {
            m = (unsigned __int128)rng_next_u64(r) * bound;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rng_gaussian(struct rng *r)
{
    // u1 in (0, 1] so log(u1) is finite.
    double u1 = 1.0 - rng_uniform_f64(r);
    double u2 = rng_uniform_f64(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
