/* LoRA (Hu et al. 2021): out += scale * (x A^T) B^T on a frozen projection. */
#include <cblas.h>
#include <string.h>

#include "layers/layers.h"

void lora_forward(float *out, float *xa, const float *x, const float *a, const float *b, int N, int IC, int OC,
                  int r, float scale, int ldi, int ldo)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, IC, 1.0f, x, ldi, a, IC, 0.0f, xa, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, r, scale, xa, r, b, r, 1.0f, out, ldo);
}

void lora_backward(float *dx, float *da, float *db, const float *dout, const float *x, const float *xa,
                   const float *a, const float *b, int N, int IC, int OC, int r, float scale, int ldi, int ldo,
                   float *scratch)
{
    /* dxa (N, r) = scale * dout B ; dB += scale * dout^T xa ; dA += dxa^T x ; dx += dxa A */
    float *dxa = scratch;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, OC, scale, dout, ldo, b, r, 0.0f, dxa, r);
    if (db) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, r, N, scale, dout, ldo, xa, r, 1.0f, db, r);
    if (da) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, IC, N, 1.0f, dxa, r, x, ldi, 1.0f, da, IC);
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, r, 1.0f, dxa, r, a, IC, 1.0f, dx, ldi);
}
