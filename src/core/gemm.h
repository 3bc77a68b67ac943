/* sgemm on a pool's threads (issue 30 item 6): one row-major product split by output blocks
 * over the threads of a pep_pool, each thread calling OpenBLAS on its block with OpenBLAS itself
 * held to one thread. The rank's threads are then one pool: no OpenBLAS workers spin beside
 * ours, and the work between BLAS calls can use the same threads (measured against OpenBLAS's
 * own threading: docs/scaling.md, "Threads inside a rank").
 *
 * The split cuts the larger of M and N (M when equal) into contiguous shares of whole
 * PEP_SGEMM_ALIGN rows or columns (pep_pool_split), one per thread, using fewer threads when a
 * share would hold under PEP_SGEMM_SPLIT_MIN multiply-adds. It depends only on (M, N, K) and the
 * pool's thread count, and each output element is computed by one call: the same thread count
 * gives the same bits run to run. A NULL pool or one of 1 thread, or a product too small to
 * split, is one plain cblas_sgemm call (the bits of code that never had a pool). */
#ifndef PEP_GEMM_H
#define PEP_GEMM_H

#include "core/pool.h"

#define PEP_SGEMM_ALIGN 16             /* rows or columns per share: whole sgemm kernel tiles */
#define PEP_SGEMM_SPLIT_MIN (1L << 22) /* multiply-adds a thread's share must reach (~40 us) */

/* C (M, N) = alpha op(A) op(B) + beta C, row-major; op(A) is (M, K), op(B) is (K, N); ta, tb
 * nonzero = A, B transposed; lda, ldb, ldc as cblas_sgemm's. OpenBLAS must be on one thread
 * (openblas_set_num_threads(1)) whenever the pool has more than one. */
void pep_sgemm(pep_pool_t *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* Threads pep_sgemm gives a product of these sizes on a pool of `threads` (1 = one plain call). */
int pep_sgemm_threads(int threads, int M, int N, int K);

#endif
