/* Explicit random number state. xoshiro256** streams seeded through splitmix64 from a
 * tuple (seed, a, b), e.g. (run seed, meta-step, task index), so a stream never depends on
 * how work is divided between ranks. pep_hash_uniform() is a stateless counter-based draw
 * used for dropout masks: the same (seed, site, index) always gives the same mask bit,
 * which is what lets a forward pass be replayed exactly. */
#ifndef PEP_RNG_H
#define PEP_RNG_H

#include <stddef.h>
#include <stdint.h>

struct pep_rng {
    uint64_t s[4];
    float spare;     /* Box-Muller's second normal */
    int has_spare;
};

static inline uint64_t pep_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void pep_rng_seed(struct pep_rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t pep_rng_next(struct pep_rng *r);
/* Uniform in [0, 1). */
float pep_rng_uniform(struct pep_rng *r);
/* Standard normal (Box-Muller). */
float pep_rng_normal(struct pep_rng *r);
/* Uniform integer in [0, n), n > 0. */
uint64_t pep_rng_below(struct pep_rng *r, uint64_t n);

/* Stateless uniform in [0, 1) from (seed, site, index). */
static inline float pep_hash_uniform(uint64_t seed, uint64_t site, uint64_t index)
{
    uint64_t h = pep_splitmix64(seed ^ pep_splitmix64(site * 0x632be59bd9b4e019ULL + index));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* FNV-1a, 64 bits: a stable hash of a name or a text (seeding by name, config digests). */
static inline uint64_t pep_fnv1a64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

#endif
