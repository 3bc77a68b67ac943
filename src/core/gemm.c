/* pep_sgemm of gemm.h: the output split by rows or columns over a pool's threads. */
#include "core/gemm.h"

#include <cblas.h>

struct sgemm_job {
    int ta, tb, M, N, K, use, by_rows;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
};

static void sgemm_call(const struct sgemm_job *j, int M, int N, const float *A, const float *B, float *C)
{
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, M, N, j->K,
                j->alpha, A, j->lda, B, j->ldb, j->beta, C, j->ldc);
}

static void sgemm_share(void *ctx, int tid, int nthreads)
{
    (void)nthreads;
    const struct sgemm_job *j = ctx;
    if (tid >= j->use) return;
    size_t lo, hi;
    if (j->by_rows) { /* rows [lo, hi) of C: rows of op(A) */
        pep_pool_split((size_t)j->M, PEP_SGEMM_ALIGN, tid, j->use, &lo, &hi);
        if (hi == lo) return;
        const float *A = j->ta ? j->A + lo : j->A + lo * (size_t)j->lda;
        sgemm_call(j, (int)(hi - lo), j->N, A, j->B, j->C + lo * (size_t)j->ldc);
    } else { /* columns [lo, hi) of C: columns of op(B) */
        pep_pool_split((size_t)j->N, PEP_SGEMM_ALIGN, tid, j->use, &lo, &hi);
        if (hi == lo) return;
        const float *B = j->tb ? j->B + lo * (size_t)j->ldb : j->B + lo;
        sgemm_call(j, j->M, (int)(hi - lo), j->A, B, j->C + lo);
    }
}

int pep_sgemm_threads(int threads, int M, int N, int K)
{
    if (threads <= 1 || M <= 0 || N <= 0 || K <= 0) return 1;
    long work = (long)M * N * K / PEP_SGEMM_SPLIT_MIN, tiles = (M >= N ? M : N) / PEP_SGEMM_ALIGN;
    long use = threads;
    if (use > work) use = work;
    if (use > tiles) use = tiles;
    return use < 1 ? 1 : (int)use;
}

void pep_sgemm(pep_pool_t *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc)
{
    struct sgemm_job j = {ta, tb, M, N, K, pep_sgemm_threads(pep_pool_threads(pool), M, N, K), M >= N, alpha, beta,
                          A, B, C, lda, ldb, ldc};
    if (j.use == 1) {
        sgemm_call(&j, M, N, A, B, C);
        return;
    }
    pep_pool_run(pool, sgemm_share, &j);
}
