/* Softmax cross-entropy with an ignore label (token classification and masked LM). */
#include <math.h>
#include <string.h>

#include "layers/layers.h"
#include "core/dispatch.h"

PEP_DISPATCH
double xent_forward(const float *logits, const int *labels, int N, int K, int ignore, int *count)
{
    double total = 0.0;
    int c = 0;
    for (int n = 0; n < N; n++) {
        if (labels[n] == ignore) continue;
        const float *z = logits + (size_t)n * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp((double)(z[k] - mx));
        total += log(sum) + mx - z[labels[n]];
        c++;
    }
    *count = c;
    return total;
}

PEP_DISPATCH
void xent_backward(float *dlogits, const float *logits, const int *labels, int N, int K, int ignore, float scale)
{
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (size_t)n * K;
        if (labels[n] == ignore) {
            memset(d, 0, (size_t)K * sizeof(float));
            continue;
        }
        const float *z = logits + (size_t)n * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        float sum = 0.0f;
        for (int k = 0; k < K; k++) {
            d[k] = expf(z[k] - mx);
            sum += d[k];
        }
        float inv = scale / sum;
        for (int k = 0; k < K; k++) d[k] *= inv;
        d[labels[n]] -= scale;
    }
}
