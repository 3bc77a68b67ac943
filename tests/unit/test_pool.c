/* The thread pool (src/core/pool.c): every thread runs each job once with its own tid, jobs
 * run back to back, shares tile the range, and a NULL or 1-thread pool runs inline. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/pool.h"
#include "testutil.h"

struct count_job {
    atomic_int calls;
    int seen[8];
    int nthreads;
};

static void count_fn(void *v, int tid, int nt)
{
    struct count_job *j = v;
    atomic_fetch_add(&j->calls, 1);
    j->seen[tid]++; /* each tid is one thread: no race on its own slot */
    if (tid == 0) j->nthreads = nt;
}

static void test_pool_runs_every_thread_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        pep_pool_t *p = NULL;
        assert_int_equal(pep_pool_create(n, &p), PEP_OK);
        assert_int_equal(pep_pool_threads(p), n);
        for (int rep = 0; rep < 200; rep++) {
            struct count_job j;
            memset(&j, 0, sizeof j);
            atomic_init(&j.calls, 0);
            pep_pool_run(p, count_fn, &j);
            assert_int_equal(atomic_load(&j.calls), n);
            for (int t = 0; t < n; t++) assert_int_equal(j.seen[t], 1);
        }
        pep_pool_destroy(&p);
        assert_null(p);
    }
}

static void test_pool_null_runs_inline(void **state)
{
    (void)state;
    struct count_job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.calls, 0);
    pep_pool_run(NULL, count_fn, &j);
    assert_int_equal(atomic_load(&j.calls), 1);
    assert_int_equal(j.nthreads, 1);
    assert_int_equal(pep_pool_threads(NULL), 1);
    pep_pool_destroy(NULL);
    pep_pool_t *p = NULL;
    pep_pool_destroy(&p);
}

static void test_pool_rejects_bad_sizes(void **state)
{
    (void)state;
    pep_pool_t *p = (pep_pool_t *)&p;
    assert_int_equal(pep_pool_create(0, &p), PEP_ERR_USAGE);
    assert_null(p);
    assert_int_equal(pep_pool_create(PEP_POOL_MAX_THREADS + 1, &p), PEP_ERR_USAGE);
    pep_error_clear();
}

static void test_pool_split_tiles(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 15, 16, 17, 100, 768, 1000003};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int nt = 1; nt <= 7; nt++) {
            size_t prev = 0;
            for (int t = 0; t < nt; t++) {
                size_t lo, hi;
                pep_pool_split(ns[k], 16, t, nt, &lo, &hi);
                assert_true(lo == prev && hi >= lo && hi <= ns[k]);
                if (hi < ns[k]) assert_int_equal(hi % 16, 0);
                prev = hi;
            }
            assert_true(prev == ns[k]);
        }
}

/* each thread sums its share of a long array, the caller adds the partial sums in thread order */
struct sum_job {
    const float *x;
    size_t n;
    double part[4];
};

static void sum_fn(void *v, int tid, int nt)
{
    struct sum_job *j = v;
    size_t lo, hi;
    pep_pool_split(j->n, 16, tid, nt, &lo, &hi);
    double s = 0;
    for (size_t i = lo; i < hi; i++) s += j->x[i];
    j->part[tid] = s;
}

static void test_pool_jobs_see_the_callers_writes(void **state)
{
    (void)state;
    enum { N = 100000 };
    static float x[N];
    pep_pool_t *p = NULL;
    assert_int_equal(pep_pool_create(3, &p), PEP_OK);
    for (int rep = 1; rep <= 20; rep++) {
        for (int i = 0; i < N; i++) x[i] = (float)rep;
        struct sum_job j = {.x = x, .n = N};
        pep_pool_run(p, sum_fn, &j);
        assert_true(j.part[0] + j.part[1] + j.part[2] == (double)rep * N);
    }
    pep_pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_every_thread_once),
        cmocka_unit_test(test_pool_null_runs_inline),
        cmocka_unit_test(test_pool_rejects_bad_sizes),
        cmocka_unit_test(test_pool_split_tiles),
        cmocka_unit_test(test_pool_jobs_see_the_callers_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
