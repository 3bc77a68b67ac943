/* Element-wise activations: GELU (erf form, as Hugging Face's "gelu"), ReLU, swish (SiLU), tanh;
 * ReLU at a stored on/off pattern (layers.h). */
#include <math.h>
#include <stddef.h>

#include "layers/fastmath.h"
#include "layers/layers.h"
#include "core/dispatch.h"

/* The adapter choices, in the order messages list them (tanh is the prefix MLP's only). */
static const struct pep_name activations[] = {
    {PEP_ACTIVATION_RELU, "relu"},
    {PEP_ACTIVATION_GELU, "gelu"},
    {PEP_ACTIVATION_SWISH, "swish"},
};
const struct pep_names pep_activation_names = {"activation", activations, 3};

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

/* Phi(x) = 0.5 (1 + erf(x / sqrt 2)) with erf by Abramowitz & Stegun 7.1.26
 * (|error| < 1.5e-7), given e = exp(-x^2 / 2), which the GELU derivative reuses. */
static inline float gauss_cdf(float x, float e)
{
    float t = 1.0f / (1.0f + 0.3275911f * fabsf(x) * INV_SQRT2);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float erf_abs = 1.0f - poly * e;
    return 0.5f + 0.5f * (x >= 0.0f ? erf_abs : -erf_abs);
}

PEP_DISPATCH
void activation_forward(float *out, const float *inp, size_t n, enum pep_activation kind)
{
    switch (kind) {
    case PEP_ACTIVATION_GELU:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            out[i] = x * gauss_cdf(x, pep_expf(-0.5f * x * x));
        }
        break;
    case PEP_ACTIVATION_RELU:
        for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        break;
    case PEP_ACTIVATION_SWISH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) out[i] = inp[i] / (1.0f + pep_expf(-inp[i]));
        break;
    case PEP_ACTIVATION_TANH:
        for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
        break;
    }
}

PEP_DISPATCH
void activation_backward(float *dinp, const float *inp, const float *dout, size_t n, enum pep_activation kind)
{
    switch (kind) {
    case PEP_ACTIVATION_GELU:
        /* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float e = pep_expf(-0.5f * x * x);
            dinp[i] += dout[i] * (gauss_cdf(x, e) + x * INV_SQRT2PI * e);
        }
        break;
    case PEP_ACTIVATION_RELU:
        for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case PEP_ACTIVATION_SWISH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float sg = 1.0f / (1.0f + pep_expf(-inp[i]));
            dinp[i] += dout[i] * (sg + inp[i] * sg * (1.0f - sg));
        }
        break;
    case PEP_ACTIVATION_TANH:
        for (size_t i = 0; i < n; i++) {
            float t = tanhf(inp[i]);
            dinp[i] += dout[i] * (1.0f - t * t);
        }
        break;
    }
}

PEP_DISPATCH
void activation_backward_inplace(float *d, const float *inp, size_t n, enum pep_activation kind)
{
    if (kind == PEP_ACTIVATION_GELU) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float e = pep_expf(-0.5f * x * x);
            d[i] *= gauss_cdf(x, e) + x * INV_SQRT2PI * e;
        }
        return;
    }
    /* the other kinds are only used on small tensors: go through the accumulating form */
    for (size_t i = 0; i < n; i++) {
        float g = d[i];
        d[i] = 0.0f;
        activation_backward(d + i, inp + i, &g, 1, kind);
    }
}

PEP_DISPATCH
void relu_pattern_record(uint64_t *on, const float *inp, size_t n)
{
    for (size_t w = 0; w < relu_pattern_words(n); w++) {
        size_t b = w * 64, e = b + 64 < n ? b + 64 : n;
        uint64_t bits = 0;
        for (size_t i = b; i < e; i++) bits |= (uint64_t)(inp[i] > 0.0f) << (i - b);
        on[w] = bits;
    }
}

static inline int unit_on(const uint64_t *on, size_t i) { return (int)((on[i / 64] >> (i % 64)) & 1u); }

PEP_DISPATCH
void relu_pattern_forward(float *out, const float *inp, const uint64_t *on, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = unit_on(on, i) ? inp[i] : 0.0f;
}

PEP_DISPATCH
void relu_pattern_backward(float *dinp, const uint64_t *on, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (unit_on(on, i)) dinp[i] += dout[i];
}
