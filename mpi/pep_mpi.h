/* The MPI layer: start/stop, the PEP_CALL_MPI check macro, rank-aware abort and log hooks,
 * chunked in-place gradient allreduce (fast and rank-ordered), error agreement across ranks,
 * and the meta-batch task partition.
 *
 * Every function says whether it is collective (all ranks of the communicator must call it,
 * in the same order, with matching arguments) or local. */
#ifndef PEP_MPI_H
#define PEP_MPI_H

#include <mpi.h>
#include <stddef.h>

#include "core/error.h"
#include "core/partition.h"

struct pep_mpi_ctx {
    MPI_Comm comm;        /* a duplicate of MPI_COMM_WORLD, errors returned (MPI_ERRORS_RETURN) */
    int rank, size;       /* in comm */
    int owns_mpi;         /* pep_mpi_init called MPI_Init, so pep_mpi_finalize calls MPI_Finalize */
    int ordered;          /* pep_mpi_reduce_grad uses the rank-ordered sum (bitwise reproducible) */
    char host[MPI_MAX_PROCESSOR_NAME];
};

/* Records an MPI failure: PEP_ERR_MPI with MPI_Error_string's text and the failing call. */
int pep_mpi_error_(int mpi_rc, const char *call, const char *file, int line, const char *func);

/* Return PEP_ERR_MPI (with MPI's own message and file:line) if the MPI call fails. Needs the
 * communicator's error handler to be MPI_ERRORS_RETURN (pep_mpi_init sets it on
 * MPI_COMM_WORLD and ctx->comm), otherwise MPI aborts before the macro sees the code. */
#define PEP_CALL_MPI(expr)                                                              \
    do {                                                                                \
        int pep_mpi_rc_ = (expr);                                                       \
        if (pep_mpi_rc_ != MPI_SUCCESS)                                                 \
            return pep_mpi_error_(pep_mpi_rc_, #expr, __FILE__, __LINE__, __func__);    \
    } while (0)
#define PEP_CALL_MPI_GOTO(rc, expr)                                                     \
    do {                                                                                \
        int pep_mpi_rc_ = (expr);                                                       \
        if (pep_mpi_rc_ != MPI_SUCCESS) {                                               \
            (rc) = pep_mpi_error_(pep_mpi_rc_, #expr, __FILE__, __LINE__, __func__);    \
            goto cleanup;                                                               \
        }                                                                               \
    } while (0)

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

/* Collective. Agreement on a status that only some ranks may have failed (every rank then takes the same branch):
 * returns the largest status of all ranks (PEP_OK if every rank passed PEP_OK). When it is
 * not PEP_OK, the lowest rank with that status broadcasts its pep_error_message() and every
 * other rank records it as its own error ("rank R: <message>"), so all ranks can report and
 * stop the same way. The failing rank keeps its own error record untouched. Returns
 * PEP_ERR_MPI if the agreement itself fails. */
int pep_mpi_agree(int local_status, MPI_Comm comm);

/* Local. The tasks of the calling rank in a meta-batch of m tasks: rank r of P gets tasks
 * r, r+P, r+2P, ... (pep_partition_range with the communicator's rank and size). */
int pep_mpi_task_range(MPI_Comm comm, int m, struct pep_task_range *out);
/* Local. The rank of comm that owns global task `task`. */
int pep_mpi_task_owner(MPI_Comm comm, int task, int *owner);

#endif
