/* rng.h — a small, seedable random number generator for weights and tests.
 *
 * splitmix64: fast, 64-bit state, same stream on every machine, so a seed
 * alone fixes every initial weight. Not for anything that needs secrecy.
 */
#ifndef RW_RNG_H
#define RW_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rw_rng {
    uint64_t s;
} rw_rng_t;

static inline void rw_rng_seed(rw_rng_t *r, uint64_t seed)
{
    r->s = seed;
}

static inline uint64_t rw_rng_u64(rw_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static inline double rw_rng_unit(rw_rng_t *r)
{
    return (double)(rw_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0. */
static inline uint64_t rw_rng_below(rw_rng_t *r, uint64_t n)
{
    return rw_rng_u64(r) % n;
}

/* Fills x[0..n) with normal(0, std) draws (Box-Muller). */
void rw_rng_normal(rw_rng_t *r, float *x, size_t n, float std);

#endif
