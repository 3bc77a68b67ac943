/* pep_sgemm (core/gemm.h): products split over 2 and 3 pool threads by rows (M >= N) or columns,
 * every transpose pair, strided operands, alpha and beta, sizes off the 16-row tiles: the same
 * bits twice at a given thread count, within 1e-6 (relative L2) of one plain cblas_sgemm call;
 * one thread and small products are that plain call, bit for bit; the thread rule's limits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "testutil.h"

static float *rand_floats(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    struct pep_rng r;
    pep_rng_seed(&r, seed, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = pep_rng_uniform(&r) - 0.5f;
    return x;
}

/* C = alpha op(A) op(B) + beta C0 through pep_sgemm on `pool` and through one cblas_sgemm. */
static void check_product(pep_pool_t *pool, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = rand_floats(na, 1), *B = rand_floats(nb, 2), *C0 = rand_floats(nc, 3);
    float *want = malloc(nc * sizeof(float)), *got = malloc(nc * sizeof(float)), *again = malloc(nc * sizeof(float));
    assert_non_null(want);
    assert_non_null(got);
    assert_non_null(again);
    memcpy(want, C0, nc * sizeof(float));
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, want, ldc);
    memcpy(got, C0, nc * sizeof(float));
    pep_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc);
    memcpy(again, C0, nc * sizeof(float));
    pep_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, again, ldc);
    assert_memory_equal(got, again, nc * sizeof(float));
    assert_true(pep_test_rel_err(got, want, nc) < 1e-6);
    for (int i = 0; i < M; i++) /* the padding columns of C are never written */
        for (int j = N; j < ldc; j++) assert_memory_equal(&got[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float));
    if (pep_sgemm_threads(pep_pool_threads(pool), M, N, K) == 1) assert_memory_equal(got, want, nc * sizeof(float));
    free(A), free(B), free(C0), free(want), free(got), free(again);
}

static void test_gemm_split_matches_one_call(void **state)
{
    (void)state;
    openblas_set_num_threads(1);
    for (int threads = 1; threads <= 3; threads++) {
        pep_pool_t *pool = NULL;
        assert_int_equal(pep_pool_create(threads, &pool), PEP_OK);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_product(pool, ta, tb, 301, 203, 161, 1.0f, 0.0f, 0);  /* by rows, 301 off the tiles */
                check_product(pool, ta, tb, 45, 1003, 311, 0.5f, 1.0f, 3); /* by columns, strided */
                check_product(pool, ta, tb, 7, 9, 5, 1.0f, 1.0f, 0);       /* too small: one call */
            }
        if (threads > 1) assert_true(pep_sgemm_threads(threads, 301, 203, 161) > 1); /* the split ran */
        pep_pool_destroy(&pool);
    }
}

static void test_gemm_thread_rule(void **state)
{
    (void)state;
    assert_int_equal(pep_sgemm_threads(1, 4096, 4096, 4096), 1);
    assert_int_equal(pep_sgemm_threads(8, 4096, 4096, 4096), 8);
    /* a share must reach PEP_SGEMM_SPLIT_MIN multiply-adds */
    assert_int_equal(pep_sgemm_threads(8, 64, 64, 64), 1);
    assert_int_equal(pep_sgemm_threads(8, 256, 256, 192), (int)((256L * 256 * 192) / PEP_SGEMM_SPLIT_MIN));
    /* and at least one whole tile of the cut dimension */
    assert_int_equal(pep_sgemm_threads(64, 48, 40, 1 << 20), 3);
    assert_int_equal(pep_sgemm_threads(4, 0, 100, 100), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_split_matches_one_call),
        cmocka_unit_test(test_gemm_thread_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
