/* Replayable dropout: the mask is a pure function of (seed, site, sequence, position,
 * channel), so it depends neither on how the batch is laid out nor on padding. */
#include "core/rng.h"
#include "layers/layers.h"
#include "core/dispatch.h"

PEP_DISPATCH
void dropout_forward(float *x, const uint64_t *rowkey, int N, int W, float p, uint64_t seed, uint64_t site)
{
    if (p <= 0.0f) return;
    float scale = 1.0f / (1.0f - p);
    for (int i = 0; i < N; i++) {
        float *r = x + (size_t)i * W;
        uint64_t base = rowkey[i] * (uint64_t)W;
        for (int c = 0; c < W; c++) r[c] = pep_hash_uniform(seed, site, base + (uint64_t)c) >= p ? r[c] * scale : 0.0f;
    }
}

PEP_DISPATCH
void dropout_backward(float *dx, const uint64_t *rowkey, int N, int W, float p, uint64_t seed, uint64_t site)
{
    dropout_forward(dx, rowkey, N, W, p, seed, site); /* the same mask and scale */
}
