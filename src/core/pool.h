/* A small fork-join thread pool for the work between BLAS calls (on main: the element-wise
 * outer optimizer step, src/optim). Its workers block on a condition variable between jobs (no
 * spinning), so they never compete with OpenBLAS's own threads for the rank's cores: a job
 * runs only while no BLAS call is in flight (or with BLAS told to use one thread).
 *
 * Determinism is the caller's part: a job gets (tid, nthreads) and must give every output
 * element to exactly one thread, with a split that depends only on the sizes and nthreads
 * (pep_pool_split), so the same thread count gives the same bits run to run. The caller is
 * thread 0; a pool of 1 thread (or a NULL pool) runs the job inline, in the caller.
 *
 * Usage: pep_pool_create(n, &p); pep_pool_run(p, fn, ctx) ...; pep_pool_destroy(&p).
 * A pool is driven by one thread at a time (jobs do not nest). */
#ifndef PEP_POOL_H
#define PEP_POOL_H

#include <stddef.h>

typedef struct pep_pool pep_pool_t;

/* fn(ctx, tid, nthreads) runs once on each thread, tid in [0, nthreads). */
typedef void (*pep_pool_fn)(void *ctx, int tid, int nthreads);

/* Starts nthreads - 1 workers (nthreads >= 1; 1 starts none). Returns PEP_OK, PEP_ERR_USAGE for
 * nthreads < 1 or above PEP_POOL_MAX_THREADS, PEP_ERR_NOMEM, or PEP_ERR_INTERNAL when a thread
 * cannot be started (the error names pthread_create's reason); *out is NULL on failure. */
#define PEP_POOL_MAX_THREADS 1024
int pep_pool_create(int nthreads, pep_pool_t **out);
/* Stops and joins the workers, frees the pool and sets *p = NULL. NULL-safe. */
void pep_pool_destroy(pep_pool_t **p);
/* Threads of the pool, the caller included (1 for NULL). */
int pep_pool_threads(const pep_pool_t *p);
/* Runs fn on every thread of the pool and returns when all have finished (a NULL pool or
 * one of 1 thread: fn(ctx, 0, 1) in the caller). */
void pep_pool_run(pep_pool_t *p, pep_pool_fn fn, void *ctx);

/* The contiguous share [*lo, *hi) of n items that thread tid of nthreads owns: shares tile
 * [0, n) in thread order, cut at multiples of `align` items (>= 1) except at n; a share may be
 * empty. A function of (n, align, tid, nthreads) only. */
void pep_pool_split(size_t n, size_t align, int tid, int nthreads, size_t *lo, size_t *hi);

#endif
