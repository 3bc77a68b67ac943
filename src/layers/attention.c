/* Multi-head self-attention of each sequence over its own tokens (no padding, no mask), with
 * optional prefix keys/values (Li & Liang prefix-tuning), over a fused (N, 3C) q|k|v buffer.
 * Per (sequence, head) the scores are two sgemms (prefix block, sequence block) into one
 * (L, P+L) row block. Backward follows the softmax Jacobian: dS = P * (dP - rowsum(dP * P)). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "layers/fastmath.h"
#include "layers/layers.h"
#include "core/dispatch.h"

size_t attention_scratch_floats(int T, int P) { return 2 * (size_t)T * (size_t)(T + P); }

/* Applies dropout to the (T, Tk) probability block of (sequence, head) `bh` = b * NH + h,
 * writing into dst (which may be src): the key of (i, j) is (bh * S + i) * S + j. */
PEP_DISPATCH
static void drop_block(float *dst, const float *src, int T, int Tk, float p, uint64_t seed, uint64_t site, uint64_t bh)
{
    const uint64_t S = PEP_DROPOUT_STRIDE;
    float scale = 1.0f / (1.0f - p);
    for (int i = 0; i < T; i++) {
        uint64_t base = (bh * S + (uint64_t)i) * S;
        const float *s = src + (size_t)i * Tk;
        float *d = dst + (size_t)i * Tk;
        for (int j = 0; j < Tk; j++) d[j] = pep_hash_uniform(seed, site, base + (uint64_t)j) >= p ? s[j] * scale : 0.0f;
    }
}

PEP_DISPATCH
void attention_forward(float *ctx, float *att, const float *qkv, const float *pk, const float *pv, const int *offsets,
                       int nseq, int seq0, int C, int NH, int P, float drop_p, uint64_t seed, uint64_t site,
                       float *scratch)
{
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    float *s = att;
    for (int b = 0; b < nseq; b++) {
        int T = offsets[b + 1] - offsets[b], Tk = P + T;
        for (int h = 0; h < NH; h++, s += (size_t)T * Tk) {
            const float *q = qkv + (size_t)offsets[b] * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, HS, scale, q, C3, pk + h * HS, C, 0.0f,
                            s, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, C3, k, C3, 0.0f, s + P, Tk);
            for (int i = 0; i < T; i++) {
                float *row = s + (size_t)i * Tk;
                float mx = row[0];
                for (int j = 1; j < Tk; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < Tk; j++) {
                    row[j] = pep_expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j < Tk; j++) row[j] *= inv;
            }
            const float *pd = s;
            if (drop_p > 0.0f) {
                drop_block(scratch, s, T, Tk, drop_p, seed, site, ((uint64_t)seq0 + (uint64_t)b) * NH + h);
                pd = scratch;
            }
            float *o = ctx + (size_t)offsets[b] * C + h * HS;
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, P, 1.0f, pd, Tk, pv + h * HS, C, 0.0f,
                            o, C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, pd + P, Tk, v, C3,
                        P > 0 ? 1.0f : 0.0f, o, C);
        }
    }
}

PEP_DISPATCH
void attention_backward(float *dqkv, float *dpk, float *dpv, const float *dctx, const float *qkv, const float *pk,
                        const float *pv, const float *att, const int *offsets, int nseq, int seq0, int C, int NH,
                        int P, float drop_p, uint64_t seed, uint64_t site, float *scratch)
{
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    const float *s = att;
    for (int b = 0; b < nseq; b++) {
        int T = offsets[b + 1] - offsets[b], Tk = P + T;
        float *pd_buf = scratch, *dp = scratch + (size_t)T * Tk;
        for (int h = 0; h < NH; h++, s += (size_t)T * Tk) {
            const float *q = qkv + (size_t)offsets[b] * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            float *dq = dqkv ? dqkv + (size_t)offsets[b] * C3 + h * HS : NULL; /* NULL: only the prefix gradients */
            float *dk = dq ? dq + C : NULL, *dv = dq ? dq + 2 * C : NULL;
            const float *dc = dctx + (size_t)offsets[b] * C + h * HS;
            const float *pd = s;
            if (drop_p > 0.0f) {
                drop_block(pd_buf, s, T, Tk, drop_p, seed, site, ((uint64_t)seq0 + (uint64_t)b) * NH + h);
                pd = pd_buf;
            }
            /* dV += Pd^T dctx ; dPv += Pd[:, :P]^T dctx */
            if (dqkv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, pd + P, Tk, dc, C, 1.0f, dv, C3);
            if (P > 0 && dpv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, HS, T, 1.0f, pd, Tk, dc, C, 1.0f,
                            dpv + h * HS, C);
            /* dPd = dctx [pv; V]^T */
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, HS, 1.0f, dc, C, pv + h * HS, C, 0.0f, dp,
                            Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dc, C, v, C3, 0.0f, dp + P, Tk);
            if (drop_p > 0.0f) drop_block(dp, dp, T, Tk, drop_p, seed, site, ((uint64_t)seq0 + (uint64_t)b) * NH + h);
            /* softmax backward, in place in dp */
            for (int i = 0; i < T; i++) {
                const float *pr = s + (size_t)i * Tk;
                float *dr = dp + (size_t)i * Tk;
                float dot = 0.0f;
                for (int j = 0; j < Tk; j++) dot += pr[j] * dr[j];
                for (int j = 0; j < Tk; j++) dr[j] = pr[j] * (dr[j] - dot);
            }
            /* dQ += scale dS [pk; K] ; dK += scale dS^T Q ; dPk += scale dS[:, :P]^T Q */
            if (P > 0 && dpk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, HS, T, scale, dp, Tk, q, C3, 1.0f, dpk + h * HS,
                            C);
            if (!dqkv) continue;
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, P, scale, dp, Tk, pk + h * HS, C, 1.0f,
                            dq, C3);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dp + P, Tk, k, C3, 1.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dp + P, Tk, q, C3, 1.0f, dk, C3);
        }
    }
}
