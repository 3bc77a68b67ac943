/* Linear layer over sgemm (on a pool's threads: core/gemm.h), with a naive reference twin for
 * tests. */
#include <string.h>

#include "core/gemm.h"
#include "layers/layers.h"

void linear_forward(pep_pool_t *pool, float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC,
                    int ldi, int ldo)
{
    /* out = b (broadcast), then out += inp W^T: one sgemm with beta = 1 */
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * ldo, b, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    pep_sgemm(pool, 0, 1, N, OC, IC, 1.0f, inp, ldi, w, IC, beta, out, ldo);
}

void linear_backward(pep_pool_t *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     int N, int IC, int OC, int ldi, int ldo)
{
    if (dinp) /* dinp (N, IC) += dout (N, OC) W (OC, IC) */
        pep_sgemm(pool, 0, 0, N, IC, OC, 1.0f, dout, ldo, w, IC, 1.0f, dinp, ldi);
    if (dw) /* dW (OC, IC) += dout^T inp */
        pep_sgemm(pool, 1, 0, OC, IC, N, 1.0f, dout, ldo, inp, ldi, 1.0f, dw, IC);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * ldo;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
}

void linear_backward_set(pep_pool_t *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         int N, int IC, int OC, int ldi, int ldo)
{
    pep_sgemm(pool, 0, 0, N, IC, OC, 1.0f, dout, ldo, w, IC, 0.0f, dinp, ldi);
    linear_backward(pool, NULL, dw, db, dout, inp, w, N, IC, OC, ldi, ldo);
}

void linear_forward_ref(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; i++) s += (double)inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = (float)s;
        }
}

void linear_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         int N, int IC, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)n * OC + o];
            if (db) db[o] += d;
            for (int i = 0; i < IC; i++) {
                if (dinp) dinp[(size_t)n * IC + i] += d * w[(size_t)o * IC + i];
                if (dw) dw[(size_t)o * IC + i] += d * inp[(size_t)n * IC + i];
            }
        }
}
