/* The meta-gradient exchange: sums a float buffer over the ranks of a communicator bucket by
 * bucket with non-blocking collectives, so the buckets whose local values are final can travel
 * while the rest of the backward still computes (PyTorch DDP's gradient buckets), and sums a
 * table of rows (the word embeddings) sparsely: only the rows some rank touched.
 *
 * Use per meta-step: pep_exchange_begin(buf); pep_exchange_mark_rows() for the token ids of
 * every batch this rank ran; pep_exchange_ready() for each range as it becomes final (any order,
 * each float at most once; jobs/stage_prime.c calls it from the backward's layer-done callback);
 * pep_exchange_finish() on every rank. Buckets are a fixed partition of the buffer, posted in a
 * fixed order (top of the buffer first, as the backward finishes it) on every rank, so ranks
 * whose ranges become ready in another order or not at all still match.
 *
 * The sum of each float does not depend on the bucket it travels in, on when it is posted or on
 * whether its row went through the sparse path: the rank-ordered mode adds ((b0 + b1) + b2) + ...
 * like pep_mpi_allreduce_sum_ordered (bitwise the same); the default mode uses MPI_Iallreduce,
 * whose in-place schedule in Open MPI 4.1 (libnbc: binomial reduce + broadcast) does not depend
 * on the count either (docs/mpi.md).
 *
 * Sharded (ZeRO-1, opts.shard): rank j owns the contiguous slice [lo_j, hi_j) of the buffer
 * (pep_partition_slice). A dense bucket is then reduce-scattered instead of all-reduced: each
 * rank receives only the sum of the bucket's part inside its slice (MPI_Ireduce_scatter, whose
 * Open MPI 4.1 schedule is the same binomial reduce as MPI_Iallreduce's, then a scatter; ordered:
 * the phase-1 alltoallv with the slices as segments, no phase 2). The sparse rows are still
 * summed whole on every rank (a few hundred rows), so after pep_exchange_finish buf holds the
 * sum over ranks on this rank's slice (and on the touched rows); elsewhere it is undefined.
 * pep_exchange_allgather then brings every rank's slice of a buffer (the updated weights, or
 * the optimizer moments for a checkpoint) to every rank. */
#ifndef PEP_EXCHANGE_H
#define PEP_EXCHANGE_H

#include <mpi.h>
#include <stddef.h>

struct pep_exchange_opts {
    int ordered;       /* 1: rank-ordered sum (reduce-scatter by MPI_Ialltoallv + MPI_Iallgatherv); 0: MPI_Iallreduce */
    size_t bucket;     /* floats per bucket; 0 = PEP_EXCHANGE_DEFAULT_BUCKET */
    size_t rows_begin; /* sparse row table inside the buffer: floats [rows_begin, rows_begin + nrows * width) */
    size_t nrows, width; /* nrows = 0: no sparse table, the whole buffer is dense */
    int max_inflight;  /* buckets in flight at once (each holds a bucket of scratch); 0 = 8 */
    int shard;         /* 1: ZeRO-1, reduce-scatter the dense buckets to the ranks' slices */
    size_t align;      /* shard: slice boundaries at multiples of this many floats; 0 = 16 */
};

#define PEP_EXCHANGE_DEFAULT_BUCKET ((size_t)25 << 18) /* 25 MiB of floats, PyTorch DDP's bucket_cap_mb */

/* What one meta-step's exchange moved and cost on this rank. */
struct pep_exchange_stats {
    double bytes;       /* payload summed: dense floats + the union's rows + the row bitmap */
    double dense_bytes; /* the whole buffer: what a dense sum moves */
    size_t rows;        /* rows in the union of touched rows (sparse table), 0 without one */
    int buckets;        /* buckets summed (dense + sparse rows) */
    int early;          /* of them, posted before pep_exchange_finish (overlapped with the backward) */
    double ready_s;     /* seconds inside pep_exchange_ready (posting, progress) */
    double finish_s;    /* seconds inside pep_exchange_finish: the exchange time not hidden */
};

struct pep_exchange;

/* Collective over comm (duplicates it, so the exchange's collectives never meet the caller's):
 * an exchange of buffers of n floats. Every rank passes the same n and options. */
int pep_exchange_create(MPI_Comm comm, size_t n, const struct pep_exchange_opts *o, struct pep_exchange **out);
/* Collective (frees the duplicate communicator). NULL-safe, sets *x = NULL. Call it only
 * after pep_exchange_finish (or before any begin). */
void pep_exchange_destroy(struct pep_exchange **x);
/* Local. Starts a meta-step's exchange of buf[0, n): clears the touched rows. */
int pep_exchange_begin(struct pep_exchange *x, float *buf);
/* Local. Rows ids[0..n) of the sparse table were touched on this rank (ids outside the table
 * are ignored). A row not marked on any rank must be zero on every rank: it is not summed. */
void pep_exchange_mark_rows(struct pep_exchange *x, const int *ids, size_t n);
/* Local call that may post collectives on the exchange's communicator: buf[begin, end) holds
 * its final local value. Posts every bucket that is complete and next in order, and lets the
 * ones in flight progress. */
int pep_exchange_ready(struct pep_exchange *x, size_t begin, size_t end);
/* Collective. Posts what is left (dense buckets, then the union of touched rows and those
 * rows), waits for everything: buf holds the sum over ranks. Fills *st (may be NULL). */
int pep_exchange_finish(struct pep_exchange *x, struct pep_exchange_stats *st);

/* Local. This rank's slice [*lo, *hi) of the buffer (everything without opts.shard). */
void pep_exchange_slice(const struct pep_exchange *x, size_t *lo, size_t *hi);
/* Collective (blocking, in pieces of at most one bucket per rank). buf[0, n) gets every rank's
 * slice: rank j's from its `mine` (the slice's hi_j - lo_j floats), or, with mine = NULL, from its
 * own buf[lo_j, hi_j) in place. Without opts.shard (or on one rank) it does nothing but copy
 * `mine` into place. */
int pep_exchange_allgather(struct pep_exchange *x, const float *mine, float *buf);

#endif
