/* Element-wise activations: GELU (erf form, as Hugging Face's "gelu"), ReLU, swish (SiLU), tanh. */
#include <math.h>
#include <stddef.h>

#include "layers/layers.h"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

/* erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): only +, *, / and one expf, so the
 * loops below vectorise (glibc's libmvec expf) where libm's erff does not. */
static inline float fast_erf(float x)
{
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float y = 1.0f - poly * expf(-ax * ax);
    return copysignf(y, x);
}

void activation_forward(float *out, const float *inp, size_t n, enum pep_act_kind kind)
{
    switch (kind) {
    case PEP_ACT_KIND_GELU:
#pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + fast_erf(inp[i] * INV_SQRT2));
        break;
    case PEP_ACT_KIND_RELU:
        for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        break;
    case PEP_ACT_KIND_SWISH:
        for (size_t i = 0; i < n; i++) out[i] = inp[i] / (1.0f + expf(-inp[i]));
        break;
    case PEP_ACT_KIND_TANH:
        for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
        break;
    }
}

void activation_backward(float *dinp, const float *inp, const float *dout, size_t n, enum pep_act_kind kind)
{
    switch (kind) {
    case PEP_ACT_KIND_GELU:
        /* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
#pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float cdf = 0.5f * (1.0f + fast_erf(x * INV_SQRT2));
            float pdf = INV_SQRT2PI * expf(-0.5f * x * x);
            dinp[i] += dout[i] * (cdf + x * pdf);
        }
        break;
    case PEP_ACT_KIND_RELU:
        for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case PEP_ACT_KIND_SWISH:
        for (size_t i = 0; i < n; i++) {
            float sg = 1.0f / (1.0f + expf(-inp[i]));
            dinp[i] += dout[i] * (sg + inp[i] * sg * (1.0f - sg));
        }
        break;
    case PEP_ACT_KIND_TANH:
        for (size_t i = 0; i < n; i++) {
            float t = tanhf(inp[i]);
            dinp[i] += dout[i] * (1.0f - t * t);
        }
        break;
    }
}
