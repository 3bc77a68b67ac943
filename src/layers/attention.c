/* Multi-head self-attention of each sequence over its own tokens (no padding, no mask), with
 * optional prefix keys/values (Li & Liang prefix-tuning), over a fused (N, 3C) q|k|v buffer.
 * Per (sequence, head) the scores are two sgemms (prefix block, sequence block) into one
 * (L, P+L) row block. Backward follows the softmax Jacobian: dS = P * (dP - rowsum(dP * P)).
 * A pool's threads take contiguous ranges of heads: every (sequence, head) block, and every
 * head's columns of the outputs and of the prefix gradients, has one writer, and each is
 * computed as with one thread, so any thread count gives the same bits. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "layers/fastmath.h"
#include "layers/layers.h"
#include "core/dispatch.h"
#include "core/pool.h"

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

/* One call's arguments, shared by the pool's threads; each takes the heads [lo, hi). */
struct att_job {
    float *ctx, *dqkv, *dpk, *dpv;
    const float *att_in, *qkv, *pk, *pv, *dctx;
    float *att_out;
    const int *offsets;
    int nseq, seq0, C, NH, P;
    float drop_p;
    uint64_t seed, site;
    float *scratch;
    size_t scratch_stride;
};

PEP_DISPATCH
static void attention_forward_heads(void *arg, int tid, int nthreads)
{
    const struct att_job *j = arg;
    size_t lo, hi;
    pep_pool_split((size_t)j->NH, 1, tid, nthreads, &lo, &hi);
    int C = j->C, NH = j->NH, P = j->P, HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    float *scratch = j->scratch + (size_t)tid * j->scratch_stride;
    const float *pk = j->pk, *pv = j->pv;
    size_t blocks = 0; /* floats of att before sequence b */
    for (int b = 0; b < j->nseq; b++) {
        int T = j->offsets[b + 1] - j->offsets[b], Tk = P + T;
        for (int h = (int)lo; h < (int)hi; h++) {
            float *s = j->att_out + blocks + (size_t)h * T * Tk;
            const float *q = j->qkv + (size_t)j->offsets[b] * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, HS, scale, q, C3, pk + h * HS, C, 0.0f,
                            s, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, C3, k, C3, 0.0f, s + P, Tk);
            for (int i = 0; i < T; i++) {
                float *row = s + (size_t)i * Tk;
                float mx = row[0];
                for (int c = 1; c < Tk; c++) mx = row[c] > mx ? row[c] : mx;
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int c = 0; c < Tk; c++) {
                    row[c] = pep_expf(row[c] - mx);
                    sum += row[c];
                }
                float inv = 1.0f / sum;
                for (int c = 0; c < Tk; c++) row[c] *= inv;
            }
            const float *pd = s;
            if (j->drop_p > 0.0f) {
                drop_block(scratch, s, T, Tk, j->drop_p, j->seed, j->site, ((uint64_t)j->seq0 + (uint64_t)b) * NH + h);
                pd = scratch;
            }
            float *o = j->ctx + (size_t)j->offsets[b] * C + h * HS;
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, P, 1.0f, pd, Tk, pv + h * HS, C, 0.0f,
                            o, C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, pd + P, Tk, v, C3,
                        P > 0 ? 1.0f : 0.0f, o, C);
        }
        blocks += (size_t)NH * T * Tk;
    }
}

void attention_forward(pep_pool_t *pool, float *ctx, float *att, const float *qkv, const float *pk, const float *pv,
                       const int *offsets, int nseq, int seq0, int C, int NH, int P, float drop_p, uint64_t seed,
                       uint64_t site, float *scratch, size_t scratch_stride)
{
    struct att_job j = {.ctx = ctx, .qkv = qkv, .pk = pk, .pv = pv, .att_out = att, .offsets = offsets,
                        .nseq = nseq, .seq0 = seq0, .C = C, .NH = NH, .P = P, .drop_p = drop_p, .seed = seed,
                        .site = site, .scratch = scratch, .scratch_stride = scratch_stride};
    pep_pool_run(pool, attention_forward_heads, &j);
}

PEP_DISPATCH
static void attention_backward_heads(void *arg, int tid, int nthreads)
{
    const struct att_job *j = arg;
    size_t lo, hi;
    pep_pool_split((size_t)j->NH, 1, tid, nthreads, &lo, &hi);
    int C = j->C, NH = j->NH, P = j->P, HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    const float *pk = j->pk, *pv = j->pv;
    float *dqkv = j->dqkv, *dpk = j->dpk, *dpv = j->dpv;
    size_t blocks = 0;
    for (int b = 0; b < j->nseq; b++) {
        int T = j->offsets[b + 1] - j->offsets[b], Tk = P + T;
        float *pd_buf = j->scratch + (size_t)tid * j->scratch_stride, *dp = pd_buf + (size_t)T * Tk;
        for (int h = (int)lo; h < (int)hi; h++) {
            const float *s = j->att_in + blocks + (size_t)h * T * Tk;
            const float *q = j->qkv + (size_t)j->offsets[b] * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            float *dq = dqkv ? dqkv + (size_t)j->offsets[b] * C3 + h * HS : NULL; /* NULL: only the prefix gradients */
            float *dk = dq ? dq + C : NULL, *dv = dq ? dq + 2 * C : NULL;
            const float *dc = j->dctx + (size_t)j->offsets[b] * C + h * HS;
            uint64_t bh = ((uint64_t)j->seq0 + (uint64_t)b) * NH + h;
            const float *pd = s;
            if (j->drop_p > 0.0f) {
                drop_block(pd_buf, s, T, Tk, j->drop_p, j->seed, j->site, bh);
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
            if (j->drop_p > 0.0f) drop_block(dp, dp, T, Tk, j->drop_p, j->seed, j->site, bh);
            /* softmax backward, in place in dp */
            for (int i = 0; i < T; i++) {
                const float *pr = s + (size_t)i * Tk;
                float *dr = dp + (size_t)i * Tk;
                float dot = 0.0f;
                for (int c = 0; c < Tk; c++) dot += pr[c] * dr[c];
                for (int c = 0; c < Tk; c++) dr[c] = pr[c] * (dr[c] - dot);
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
        blocks += (size_t)NH * T * Tk;
    }
}

void attention_backward(pep_pool_t *pool, float *dqkv, float *dpk, float *dpv, const float *dctx, const float *qkv,
                        const float *pk, const float *pv, const float *att, const int *offsets, int nseq, int seq0,
                        int C, int NH, int P, float drop_p, uint64_t seed, uint64_t site, float *scratch,
                        size_t scratch_stride)
{
    struct att_job j = {.dqkv = dqkv, .dpk = dpk, .dpv = dpv, .dctx = dctx, .qkv = qkv, .pk = pk, .pv = pv,
                        .att_in = att, .offsets = offsets, .nseq = nseq, .seq0 = seq0, .C = C, .NH = NH, .P = P,
                        .drop_p = drop_p, .seed = seed, .site = site, .scratch = scratch,
                        .scratch_stride = scratch_stride};
    pep_pool_run(pool, attention_backward_heads, &j);
}
