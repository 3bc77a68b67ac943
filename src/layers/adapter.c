/* Bottleneck adapter (Houlsby et al. 2019; AdapterHub placements): y = x + up(act(down(x))),
 * a ReLU optionally at a stored on/off pattern (layers.h). */
#include <string.h>

#include "core/gemm.h"
#include "layers/layers.h"

void adapter_forward(pep_pool_t *pool, float *out, float *h_pre, float *h_act, const float *x, const float *wd, const float *bd,
                     const float *wu, const float *bu, int N, int C, int R, enum pep_activation act,
                     const uint64_t *relu_on)
{
    linear_forward(pool, h_pre, x, wd, bd, N, C, R, C, R);
    if (relu_on) relu_pattern_forward(h_act, h_pre, relu_on, (size_t)N * R);
    else activation_forward(h_act, h_pre, (size_t)N * R, act);
    if (out != x) memcpy(out, x, (size_t)N * C * sizeof(float));
    /* out (= x) += h_act Wu^T + bu */
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] += bu[c];
    }
    pep_sgemm(pool, 0, 1, N, C, R, 1.0f, h_act, R, wu, R, 1.0f, out, C);
}

void adapter_backward(pep_pool_t *pool, float *dx, float *dwd, float *dbd, float *dwu, float *dbu, const float *dout, const float *x,
                      const float *h_pre, const float *h_act, const float *wd, const float *wu, int N, int C, int R,
                      enum pep_activation act, const uint64_t *relu_on, float *scratch)
{
    /* scratch: dh_act (N, R) then dh_pre (N, R) */
    float *dh_act = scratch, *dh_pre = scratch + (size_t)N * R;
    memset(dh_act, 0, (size_t)N * R * sizeof(float));
    memset(dh_pre, 0, (size_t)N * R * sizeof(float));
    linear_backward(pool, dh_act, dwu, dbu, dout, h_act, wu, N, R, C, R, C);
    if (relu_on) relu_pattern_backward(dh_pre, relu_on, dh_act, (size_t)N * R);
    else activation_backward(dh_pre, h_pre, dh_act, (size_t)N * R, act);
    if (dx)
        for (size_t i = 0; i < (size_t)N * C; i++) dx[i] += dout[i];
    linear_backward(pool, dx, dwd, dbd, dh_pre, x, wd, N, C, R, C, R);
}
