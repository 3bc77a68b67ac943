/* Embeddings: XLM-R padding-offset positions and word + position + token-type sums. */
#include <string.h>

#include "layers/layers.h"

void embedding_positions(int *pos, const int *ids, int B, int T, int pad_id)
{
    /* Hugging Face create_position_ids_from_input_ids: cumsum(mask) * mask + padding_idx */
    for (int b = 0; b < B; b++) {
        int c = 0;
        for (int t = 0; t < T; t++) {
            int real = ids[b * T + t] != pad_id;
            c += real;
            pos[b * T + t] = real ? c + pad_id : pad_id;
        }
    }
}

void embedding_forward(float *out, const int *ids, const int *pos, const float *wte, const float *wpe,
                       const float *wtt, int B, int T, int C)
{
    for (int n = 0; n < B * T; n++) {
        float *o = out + (size_t)n * C;
        const float *we = wte + (size_t)ids[n] * C, *pe = wpe + (size_t)pos[n] * C;
        for (int i = 0; i < C; i++) o[i] = we[i] + pe[i] + wtt[i];
    }
}

void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int *ids, const int *pos,
                        int B, int T, int C)
{
    for (int n = 0; n < B * T; n++) {
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
