/* The fork-join pool of pool.h: workers wait on a condition variable for a new job
 * generation, run it, and the last one to finish wakes the caller. */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/partition.h"

struct pep_pool {
    int n;                  /* threads, the caller included */
    int started;            /* workers actually running (cleanup after a failed create) */
    pthread_t *workers;     /* n - 1 */
    pthread_mutex_t mu;
    pthread_cond_t go;      /* a new generation (or stop) */
    pthread_cond_t done;    /* pending reached 0 */
    unsigned long gen;      /* bumped once per job */
    int pending;            /* workers still running the current job */
    int stop;
    pep_pool_fn fn;
    void *ctx;
};

struct worker_arg {
    pep_pool_t *p;
    int tid;
};

static void *worker_main(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    pep_pool_t *p = wa.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        pep_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, wa.tid, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pep_pool_create(int nthreads, pep_pool_t **out)
{
    *out = NULL;
    PEP_CHECK(nthreads >= 1 && nthreads <= PEP_POOL_MAX_THREADS, PEP_ERR_USAGE,
              "thread pool of %d threads: give 1 to %d", nthreads, PEP_POOL_MAX_THREADS);
    pep_pool_t *p = calloc(1, sizeof *p);
    PEP_CHECK(p != NULL, PEP_ERR_NOMEM, "out of memory for a thread pool");
    p->n = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (nthreads > 1) {
        p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
        if (!p->workers) {
            pep_pool_destroy(&p);
            PEP_FAIL(PEP_ERR_NOMEM, "out of memory for %d pool threads", nthreads - 1);
        }
    }
    for (int t = 1; t < nthreads; t++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            pep_pool_destroy(&p);
            PEP_FAIL(PEP_ERR_NOMEM, "out of memory for pool thread %d", t);
        }
        wa->p = p, wa->tid = t;
        int e = pthread_create(&p->workers[t - 1], NULL, worker_main, wa);
        if (e != 0) {
            free(wa);
            pep_pool_destroy(&p);
            PEP_FAIL(PEP_ERR_INTERNAL, "cannot start pool thread %d of %d: %s", t, nthreads, strerror(e));
        }
        p->started++;
    }
    *out = p;
    return PEP_OK;
}

void pep_pool_destroy(pep_pool_t **pp)
{
    if (!pp || !*pp) return;
    pep_pool_t *p = *pp;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->started; t++) pthread_join(p->workers[t], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
    *pp = NULL;
}

int pep_pool_threads(const pep_pool_t *p) { return p ? p->n : 1; }

void pep_pool_run(pep_pool_t *p, pep_pool_fn fn, void *ctx)
{
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pep_pool_split(size_t n, size_t align, int tid, int nthreads, size_t *lo, size_t *hi)
{
    pep_partition_slice(tid, nthreads, n, align, lo, hi);
}
