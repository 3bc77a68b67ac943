/* The MPI layer: start/stop, the PEP_CALL_MPI check macro, rank-aware abort and log hooks,
 * chunked in-place gradient allreduce (fast and rank-ordered), error agreement across ranks,
 * and the task groups that split a meta-batch's tasks (the partition itself is
 * src/core/partition.h: pure functions of rank and size).
 *
 * Every function says whether it is collective (all ranks of the communicator must call it,
 * in the same order, with matching arguments) or local. */
#ifndef PEP_MPI_H
#define PEP_MPI_H

#include <mpi.h>
#include <stddef.h>

#include "core/error.h"
#include "mpi_call.h"

struct pep_mpi_ctx {
    MPI_Comm comm;        /* a duplicate of MPI_COMM_WORLD, errors returned (MPI_ERRORS_RETURN) */
    int rank, size;       /* in comm */
    int owns_mpi;         /* pep_mpi_init called MPI_Init, so pep_mpi_finalize calls MPI_Finalize */
    int ordered;          /* pep_mpi_reduce_grad uses the rank-ordered sum (bitwise reproducible) */
    char host[MPI_MAX_PROCESSOR_NAME];
};

/* Collective over MPI_COMM_WORLD. Initialises MPI (unless the caller already did: then
 * finalize leaves it alone), duplicates MPI_COMM_WORLD into ctx->comm, sets MPI_ERRORS_RETURN
 * on both, fills rank/size/host and installs
 *   - an abort hook: pep_abort() on any rank prints "[rank r] peprime: fatal: ..." and calls
 *     MPI_Abort(MPI_COMM_WORLD), so the other ranks never hang in a collective;
 *   - a log hook: INFO/DEBUG lines of rank 0 only (on stdout); warnings and errors of every
 *     rank on stderr, prefixed "[rank r] " when size > 1. */
int pep_mpi_init(int *argc, char ***argv, struct pep_mpi_ctx *ctx);
/* Collective. Restores the default hooks, frees ctx->comm and finalises MPI if init started
 * it. Safe on a ctx whose init failed or that was already finalised. */
int pep_mpi_finalize(struct pep_mpi_ctx *ctx);

/* Local. Largest element count handed to one MPI call by the reductions below (default
 * 2^28 floats = 1 GiB, far from INT_MAX). Tests set tiny values to force many chunks.
 * Process-wide: every rank must use the same value. n = 0 restores the default. */
void pep_mpi_set_chunk(size_t n);
size_t pep_mpi_chunk(void);

/* Collective. The `bytes` bytes at buf on rank `root` to buf on every rank, bit for bit (as
 * MPI_BYTE), in pieces of at most pep_mpi_chunk() floats' worth (and INT_MAX bytes), so any size
 * works. Every rank must pass the same `bytes` and `root`. */
int pep_mpi_bcast(void *buf, size_t bytes, int root, MPI_Comm comm);
/* Collective. buf[0..n) <- sum over ranks, in place (MPI_IN_PLACE + MPI_Allreduce, MPI_SUM),
 * chunked so any n (also > INT_MAX) works. Every rank must pass the same n. Fastest; the
 * rounding of the sum depends on the reduction algorithm MPI picks (message size, rank
 * count, tuning), so results may differ in the last bits between runs with other settings. */
int pep_mpi_allreduce_sum(float *buf, size_t n, MPI_Comm comm);
/* Collective. Same result contract but summed strictly in rank order,
 *   buf = ((b_0 + b_1) + b_2) + ... + b_{P-1},
 * as a hand-made reduce-scatter + allgather: rank j receives segment j of every rank's
 * buffer (MPI_Alltoallv), adds them in rank order, and MPI_Allgatherv shares the sums. The
 * bits depend only on the inputs and P, never on which algorithm MPI picks, and are the same
 * on every rank. Chosen over MPI_Allreduce when runs must be bitwise reproducible; measured
 * here as fast as MPI_Allreduce to 4x slower (docs/mpi.md). Scratch: 1 MiB + O(P). */
int pep_mpi_allreduce_sum_ordered(float *buf, size_t n, MPI_Comm comm);
/* Collective over ((struct pep_mpi_ctx *)ud)->comm: the gradient-reduction callback that
 * src/ takes (int (*)(float *g, size_t n, void *ud)); ordered sum if ctx->ordered. */
int pep_mpi_reduce_grad(float *g, size_t n, void *ud);
/* Collective over ((struct pep_mpi_ctx *)ud)->comm: *x becomes the sum of every rank's *x,
 * added in rank order ((x0 + x1) + x2) + ... on every rank after an MPI_Allgather, so every
 * rank gets the same bits whatever algorithm MPI picks. A sharded optimizer's norm hook
 * (pep_optim_sum_fn: the slices' sums of squares). */
int pep_mpi_sum_double_ordered(double *x, void *ud);

/* Task groups (maml.group_size = G): the P ranks of a context as P / G groups of G consecutive
 * ranks (world ranks gG .. gG + G - 1 form group g); a group shares one task at a time. */
struct pep_mpi_group {
    MPI_Comm comm;   /* the group's ranks, errors returned; MPI_COMM_NULL before split / after free */
    int rank, size;  /* in comm (size = G); rank 0 is the group's lead */
    int index, count;/* this group's index and the number of groups (P / G) */
    int ordered;     /* pep_mpi_group_sum sums in rank order (copied from ctx->ordered) */
    double bytes;    /* payload summed by pep_mpi_group_sum so far (floats x 4), for the reports */
    double seconds;  /* wall time inside pep_mpi_group_sum so far */
};

/* Collective over ctx->comm. Splits it into groups of group_size consecutive ranks
 * (MPI_Comm_split, colour rank / G, key rank). group_size must divide ctx->size
 * (pep_partition_check_groups says so to the user first). */
int pep_mpi_group_split(const struct pep_mpi_ctx *ctx, int group_size, struct pep_mpi_group *g);
/* Collective over g->comm (safe after a failed split: then local). Frees the communicator. */
void pep_mpi_group_free(struct pep_mpi_group *g);
/* Collective over ((struct pep_mpi_group *)ud)->comm: src/maml's task-group hook
 * (pep_maml_opts.group_sum). Agrees on `status` with pep_mpi_agree (every rank gets the worst
 * status and the failing rank's message), then, if it is PEP_OK, sums x[0..n) over the group
 * in place (rank-ordered if g->ordered). n may differ from 0 only if it is the same on every
 * rank. Returns the agreed status. */
int pep_mpi_group_sum(float *x, size_t n, int status, void *ud);

#endif
