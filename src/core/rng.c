/* xoshiro256** (Blackman & Vigna) seeded by splitmix64; see rng.h. */
#include "core/rng.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void pep_rng_seed(struct pep_rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = pep_splitmix64(seed) ^ pep_splitmix64(a + 0x1234567ULL) * 3 ^ pep_splitmix64(b + 0x89abcdefULL) * 7;
    for (int i = 0; i < 4; i++) {
        x = pep_splitmix64(x + (uint64_t)i);
        r->s[i] = x;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
    r->has_spare = 0;
}

uint64_t pep_rng_next(struct pep_rng *r)
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

float pep_rng_uniform(struct pep_rng *r) { return (float)(pep_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float pep_rng_normal(struct pep_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = ((double)(pep_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(pep_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
    r->spare = (float)(rad * sin(ang));
    r->has_spare = 1;
    return (float)(rad * cos(ang));
}

uint64_t pep_rng_below(struct pep_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection for an unbiased draw. */
    uint64_t x = pep_rng_next(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = pep_rng_next(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}
