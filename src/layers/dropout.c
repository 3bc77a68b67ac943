/* Replayable dropout: the mask is a pure function of (seed, site, element). */
#include "core/rng.h"
#include "layers/layers.h"

void dropout_forward(float *x, size_t n, float p, uint64_t seed, uint64_t site)
{
    if (p <= 0.0f) return;
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) x[i] = pep_hash_uniform(seed, site, i) >= p ? x[i] * scale : 0.0f;
}

void dropout_backward(float *dx, size_t n, float p, uint64_t seed, uint64_t site)
{
    dropout_forward(dx, n, p, seed, site); /* the same mask and scale */
}
