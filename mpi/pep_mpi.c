/* MPI start/stop, rank-aware abort and log hooks, chunked and rank-ordered allreduce,
 * error agreement and task groups (pep_mpi.h). */
#include "pep_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define PEP_MPI_DEFAULT_CHUNK ((size_t)1 << 28)
/* Piece of the ordered sum per round (1 MiB): its scratch stays in cache; 16 MiB pieces
 * measured 5-10x slower on 2 ranks. */
#define PEP_MPI_PIECE ((size_t)1 << 18)

static size_t chunk_elems = PEP_MPI_DEFAULT_CHUNK;

/* What the hooks need; static because the hooks outlive the caller's stack frames. */
static int hook_rank;
static int hook_size = 1;

static int mpi_is_live(void)
{
    int started = 0, finished = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&finished);
    return started && !finished;
}

static void abort_hook(int code, const char *msg, void *ud)
{
    (void)ud;
    if (hook_size > 1)
        fprintf(stderr, "[rank %d] peprime: fatal: %s\n", hook_rank, msg);
    else
        fprintf(stderr, "peprime: fatal: %s\n", msg);
    if (pep_error_code() != PEP_OK) fprintf(stderr, "%s", pep_error_where());
    fflush(stderr);
    fflush(stdout);
    /* returning would let pep_abort() exit() this rank alone and leave the rest hanging */
    if (mpi_is_live()) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

static void log_hook(int level, const char *line, void *ud)
{
    (void)ud;
    if (level >= PEP_LOG_INFO) {
        if (hook_rank != 0) return;
        fprintf(stdout, "%s\n", line);
        fflush(stdout);
        return;
    }
    const char *tag = level == PEP_LOG_WARN ? "warning: " : "error: ";
    if (hook_size > 1)
        fprintf(stderr, "[rank %d] %s%s\n", hook_rank, tag, line);
    else
        fprintf(stderr, "%s%s\n", tag, line);
    fflush(stderr);
}

int pep_mpi_init(int *argc, char ***argv, struct pep_mpi_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->comm = MPI_COMM_NULL;
    ctx->size = 1;
    int started = 0, finished = 0;
    MPI_Finalized(&finished);
    PEP_CHECK(!finished, PEP_ERR_INTERNAL, "pep_mpi_init called after MPI_Finalize");
    MPI_Initialized(&started);
    if (!started) {
        int provided = 0;
        /* OpenBLAS threads never call MPI: only the main thread does */
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        PEP_CHECK(rc == MPI_SUCCESS, PEP_ERR_MPI,
                  "MPI_Init_thread failed (code %d): start peprime with mpirun/srun, or check "
                  "the Open MPI installation", rc);
        if (provided < MPI_THREAD_FUNNELED) {
            /* the same library on every rank: all ranks stop here */
            MPI_Finalize();
            PEP_FAIL(PEP_ERR_MPI,
                     "the MPI library provides thread level %d, below MPI_THREAD_FUNNELED (%d) that peprime "
                     "needs beside OpenBLAS's threads: use an MPI built with thread support (Debian's Open MPI is)",
                     provided, MPI_THREAD_FUNNELED);
        }
        ctx->owns_mpi = 1;
    } else {
        int provided = 0;
        PEP_CHECK(MPI_Query_thread(&provided) == MPI_SUCCESS && provided >= MPI_THREAD_FUNNELED, PEP_ERR_MPI,
                  "MPI was initialised with thread level %d, below MPI_THREAD_FUNNELED (%d) that peprime needs "
                  "beside OpenBLAS's threads: call MPI_Init_thread with MPI_THREAD_FUNNELED", provided,
                  MPI_THREAD_FUNNELED);
    }
    PEP_CALL_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    PEP_CALL_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &ctx->comm));
    PEP_CALL_MPI(MPI_Comm_set_errhandler(ctx->comm, MPI_ERRORS_RETURN));
    PEP_CALL_MPI(MPI_Comm_rank(ctx->comm, &ctx->rank));
    PEP_CALL_MPI(MPI_Comm_size(ctx->comm, &ctx->size));
    int len = 0;
    PEP_CALL_MPI(MPI_Get_processor_name(ctx->host, &len));
    hook_rank = ctx->rank;
    hook_size = ctx->size;
    pep_set_abort_hook(abort_hook, NULL);
    pep_set_log_hook(log_hook, NULL);
    return PEP_OK;
}

int pep_mpi_finalize(struct pep_mpi_ctx *ctx)
{
    if (!ctx) return PEP_OK;
    int finished = 0;
    MPI_Finalized(&finished);
    if (finished) {
        ctx->comm = MPI_COMM_NULL;
        return PEP_OK;
    }
    pep_set_abort_hook(NULL, NULL);
    pep_set_log_hook(NULL, NULL);
    hook_rank = 0;
    hook_size = 1;
    if (ctx->comm != MPI_COMM_NULL) PEP_CALL_MPI(MPI_Comm_free(&ctx->comm));
    if (ctx->owns_mpi) {
        ctx->owns_mpi = 0;
        PEP_CALL_MPI(MPI_Finalize());
    }
    return PEP_OK;
}

void pep_mpi_set_chunk(size_t n)
{
    if (n == 0) n = PEP_MPI_DEFAULT_CHUNK;
    chunk_elems = n > (size_t)INT_MAX ? (size_t)INT_MAX : n;
}

size_t pep_mpi_chunk(void) { return chunk_elems; }

int pep_mpi_bcast(void *buf, size_t bytes, int root, MPI_Comm comm)
{
    PEP_CHECK(buf != NULL || bytes == 0, PEP_ERR_INTERNAL, "pep_mpi_bcast: NULL buffer of %zu bytes", bytes);
    size_t chunk = chunk_elems > (size_t)INT_MAX / sizeof(float) ? (size_t)INT_MAX : chunk_elems * sizeof(float);
    for (size_t off = 0; off < bytes; off += chunk) {
        int count = (int)(bytes - off < chunk ? bytes - off : chunk);
        PEP_CALL_MPI(MPI_Bcast((char *)buf + off, count, MPI_BYTE, root, comm));
    }
    return PEP_OK;
}

int pep_mpi_allreduce_sum(float *buf, size_t n, MPI_Comm comm)
{
    PEP_CHECK(buf != NULL || n == 0, PEP_ERR_INTERNAL, "pep_mpi_allreduce_sum: NULL buffer of %zu floats", n);
    size_t chunk = chunk_elems;
    for (size_t off = 0; off < n; off += chunk) {
        int count = (int)(n - off < chunk ? n - off : chunk);
        PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_FLOAT, MPI_SUM, comm));
    }
    return PEP_OK;
}

int pep_mpi_allreduce_sum_ordered(float *buf, size_t n, MPI_Comm comm)
{
    PEP_CHECK(buf != NULL || n == 0, PEP_ERR_INTERNAL, "pep_mpi_allreduce_sum_ordered: NULL buffer of %zu floats", n);
    int rank, size;
    PEP_CALL_MPI(MPI_Comm_rank(comm, &rank));
    PEP_CALL_MPI(MPI_Comm_size(comm, &size));
    if (size == 1 || n == 0) return PEP_OK;
    size_t piece = chunk_elems < PEP_MPI_PIECE ? chunk_elems : PEP_MPI_PIECE;
    if (piece > n) piece = n;
    int rc = PEP_OK;
    int *counts = NULL, *displs = NULL, *rcounts = NULL, *rdispls = NULL;
    float *gathered = NULL; /* (size, my segment): every rank's values of the segment this rank sums */
    PEP_ALLOC_GOTO(rc, counts, size);
    PEP_ALLOC_GOTO(rc, displs, size);
    PEP_ALLOC_GOTO(rc, rcounts, size);
    PEP_ALLOC_GOTO(rc, rdispls, size);
    PEP_ALLOC_GOTO(rc, gathered, piece + (size_t)size);
    for (size_t off = 0; off < n; off += piece) {
        size_t len = n - off < piece ? n - off : piece;
        /* segment j of the piece is summed by rank j (reduce-scatter), then shared (allgather) */
        size_t base = len / (size_t)size, extra = len % (size_t)size, pos = 0;
        for (int j = 0; j < size; j++) {
            counts[j] = (int)(base + ((size_t)j < extra ? 1 : 0));
            displs[j] = (int)pos;
            pos += (size_t)counts[j];
        }
        int mine = counts[rank];
        for (int i = 0; i < size; i++) {
            rcounts[i] = mine;
            rdispls[i] = i * mine;
        }
        PEP_CALL_MPI_GOTO(rc, MPI_Alltoallv(buf + off, counts, displs, MPI_FLOAT, gathered, rcounts, rdispls,
                                            MPI_FLOAT, comm));
        float *seg = buf + off + displs[rank];
        for (int k = 0; k < mine; k++) {
            /* ((b_0 + b_1) + b_2) + ...: fixed rank order, whatever algorithm MPI uses */
            float acc = gathered[k];
            for (int i = 1; i < size; i++) acc = acc + gathered[(size_t)i * (size_t)mine + (size_t)k];
            seg[k] = acc;
        }
        PEP_CALL_MPI_GOTO(rc, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf + off, counts, displs,
                                             MPI_FLOAT, comm));
    }
cleanup:
    pep_free(counts);
    pep_free(displs);
    pep_free(rcounts);
    pep_free(rdispls);
    pep_free(gathered);
    return rc;
}

int pep_mpi_reduce_grad(float *g, size_t n, void *ud)
{
    const struct pep_mpi_ctx *ctx = ud;
    PEP_CHECK(ctx != NULL, PEP_ERR_INTERNAL, "pep_mpi_reduce_grad: no MPI context");
    if (ctx->ordered) PEP_CALL(pep_mpi_allreduce_sum_ordered(g, n, ctx->comm));
    else PEP_CALL(pep_mpi_allreduce_sum(g, n, ctx->comm));
    return PEP_OK;
}

int pep_mpi_group_split(const struct pep_mpi_ctx *ctx, int group_size, struct pep_mpi_group *g)
{
    memset(g, 0, sizeof *g);
    g->comm = MPI_COMM_NULL;
    PEP_CHECK(group_size >= 1 && ctx->size % group_size == 0, PEP_ERR_INTERNAL,
              "pep_mpi_group_split: group size %d does not divide %d ranks", group_size, ctx->size);
    PEP_CALL_MPI(MPI_Comm_split(ctx->comm, ctx->rank / group_size, ctx->rank, &g->comm));
    PEP_CALL_MPI(MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN));
    PEP_CALL_MPI(MPI_Comm_rank(g->comm, &g->rank));
    PEP_CALL_MPI(MPI_Comm_size(g->comm, &g->size));
    g->index = ctx->rank / group_size;
    g->count = ctx->size / group_size;
    g->ordered = ctx->ordered;
    return PEP_OK;
}

void pep_mpi_group_free(struct pep_mpi_group *g)
{
    if (g && g->comm != MPI_COMM_NULL && mpi_is_live()) MPI_Comm_free(&g->comm);
    if (g) g->comm = MPI_COMM_NULL;
}

int pep_mpi_group_sum(float *x, size_t n, int status, void *ud)
{
    struct pep_mpi_group *g = ud;
    PEP_CHECK(g != NULL && g->comm != MPI_COMM_NULL, PEP_ERR_INTERNAL, "pep_mpi_group_sum: no task group");
    double t0 = MPI_Wtime();
    int rc = pep_mpi_agree(status, g->comm);
    if (rc == PEP_OK && n > 0) {
        rc = g->ordered ? pep_mpi_allreduce_sum_ordered(x, n, g->comm) : pep_mpi_allreduce_sum(x, n, g->comm);
        g->bytes += 4.0 * (double)n;
    }
    g->seconds += MPI_Wtime() - t0;
    return rc;
}

int pep_mpi_sum_double_ordered(double *x, void *ud)
{
    const struct pep_mpi_ctx *ctx = ud;
    double *all = NULL;
    PEP_ALLOC(all, (size_t)ctx->size);
    int rc = PEP_OK;
    PEP_CALL_MPI_GOTO(rc, MPI_Allgather(x, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, ctx->comm));
    double s = all[0];
    for (int i = 1; i < ctx->size; i++) s += all[i];
    *x = s;
cleanup:
    pep_free(all);
    return rc;
}
