/* Prefix-tuning (Li & Liang 2021): the per-layer prefix keys and values that attention puts
 * before each sequence's own, computed by the reparameterisation MLP
 * kv (P, 2LC) = W2 tanh(W0 emb + b0) + b2, split into layer l's keys (columns 2lC ..) and
 * values (columns (2l+1)C ..). Flat prefixes (no MLP) are the parameters themselves. */
#include <string.h>

#include "layers/layers.h"

void prefix_mlp_forward(float *pk, float *pv, float *kv, float *h, float *act, const float *emb, const float *w0,
                        const float *b0, const float *w2, const float *b2, int L, int P, int C, int H)
{
    int O = 2 * L * C;
    linear_forward(NULL, h, emb, w0, b0, P, C, H, C, H);
    activation_forward(act, h, (size_t)P * H, PEP_ACTIVATION_TANH);
    linear_forward(NULL, kv, act, w2, b2, P, H, O, H, O);
    for (size_t l = 0; l < (size_t)L; l++)
        for (size_t p = 0; p < (size_t)P; p++) {
            memcpy(pk + (l * P + p) * C, kv + p * O + 2 * l * C, (size_t)C * sizeof(float));
            memcpy(pv + (l * P + p) * C, kv + p * O + (2 * l + 1) * C, (size_t)C * sizeof(float));
        }
}

void prefix_mlp_backward(float *demb, float *dw0, float *db0, float *dw2, float *db2, float *dkv, float *scratch,
                         const float *dpk, const float *dpv, const float *emb, const float *w0, const float *w2,
                         const float *h, const float *act, int L, int P, int C, int H)
{
    int O = 2 * L * C;
    size_t PC = (size_t)P * C;
    for (int l = 0; l < L; l++)
        for (int p = 0; p < P; p++) {
            memcpy(dkv + (size_t)p * O + 2 * (size_t)l * C, dpk + l * PC + (size_t)p * C, (size_t)C * sizeof(float));
            memcpy(dkv + (size_t)p * O + (2 * (size_t)l + 1) * C, dpv + l * PC + (size_t)p * C,
                   (size_t)C * sizeof(float));
        }
    float *dact = scratch, *dh = scratch + (size_t)P * H;
    memset(scratch, 0, 2 * (size_t)P * H * sizeof(float));
    linear_backward(NULL, dact, dw2, db2, dkv, act, w2, P, H, O, H, O);
    activation_backward(dh, h, dact, (size_t)P * H, PEP_ACTIVATION_TANH);
    linear_backward(NULL, demb, dw0, db0, dh, emb, w0, P, C, H, C, H);
}
