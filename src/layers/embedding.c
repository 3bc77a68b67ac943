/* Embeddings: summed word + position + token-type rows of each token. */
#include <string.h>

#include "layers/layers.h"
#include "core/dispatch.h"

PEP_DISPATCH
void embedding_forward(float *out, const int *ids, const int *pos, const float *wte, const float *wpe,
                       const float *wtt, int N, int C)
{
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *we = wte + (size_t)ids[n] * C, *pe = wpe + (size_t)pos[n] * C;
        for (int i = 0; i < C; i++) o[i] = we[i] + pe[i] + wtt[i];
    }
}

PEP_DISPATCH
void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int *ids, const int *pos,
                        int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        if (dwte) {
            float *g = dwte + (size_t)ids[n] * C;
            for (int i = 0; i < C; i++) g[i] += d[i];
        }
        if (dwpe) {
            float *g = dwpe + (size_t)pos[n] * C;
            for (int i = 0; i < C; i++) g[i] += d[i];
        }
        if (dwtt)
            for (int i = 0; i < C; i++) dwtt[i] += d[i];
    }
}
