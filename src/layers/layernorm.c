/* LayerNorm forward/backward (llm.c's formulation; statistics in float, two-pass mean/var).
 * The row reductions are `omp simd` reductions: vectorised, in a fixed order (deterministic). */
#include <math.h>

#include "layers/layers.h"
#include "core/dispatch.h"

PEP_DISPATCH
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

PEP_DISPATCH
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int N, int C)
{
    if (dinp) {
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            /* dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w */
            float sum1 = 0.0f, sum2 = 0.0f;
#pragma omp simd reduction(+ : sum1, sum2)
            for (int i = 0; i < C; i++) {
                float xhat = (x[i] - m) * s, dxhat = dy[i] * w[i];
                sum1 += dxhat;
                sum2 += dxhat * xhat;
            }
            sum1 /= (float)C;
            sum2 /= (float)C;
            for (int i = 0; i < C; i++) {
                float xhat = (x[i] - m) * s, dxhat = dy[i] * w[i];
                dx[i] += s * (dxhat - sum1 - xhat * sum2);
            }
        }
    }
    if (dw || db) {
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            for (int i = 0; i < C; i++) {
                if (dw) dw[i] += dy[i] * (x[i] - m) * s;
                if (db) db[i] += dy[i];
            }
        }
    }
}
