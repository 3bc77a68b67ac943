/* Vectorisable float exp: Cephes' expf polynomial with Cody-Waite range reduction, written
 * with +, *, floor and an integer shift only, so `#pragma omp simd` loops compile to AVX
 * code (libm's expf is a scalar call). Max relative error ~2 ulp on [-87, 88]; returns 0
 * below -87.3 (as the true exp does in float32, up to denormals). */
#ifndef PEP_FASTMATH_H
#define PEP_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma omp declare simd notinbranch
static inline float pep_expf(float x)
{
    float xc = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    float n = floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.3f ? 0.0f : p * scale;
}

#endif
