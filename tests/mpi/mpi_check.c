/* Real-MPI checks run by ctest under mpiexec (label mpi), one mode per test:
 *   collectives        chunked allreduce exact sums, rank-ordered sum bitwise, chunked broadcast
 *                      bit for bit, agree, task range
 *   exchange           the bucketed meta-gradient exchange (mpi/exchange.h): overlapped (ranges
 *                      ready in another order on every rank, or not at all) and sparse sums
 *                      bitwise equal to the blocking dense ones, every rank the same bits; the
 *                      same sharded (ZeRO-1: reduce-scatter to slices, then the allgather), and
 *                      the slices tile the buffer
 *   log                rank-0-only info lines, [rank r] warnings
 *   fault-agree R      rank R cannot open its file; pep_mpi_agree -> every rank exits non-zero
 *   fault-abort R      rank R hits a non-finite loss and pep_abort()s while the others wait in
 *                      an allreduce: MPI_Abort must end the whole job
 *   placement T        pep_placement_setup with run.threads = T, then checks the real binding
 *   bench N            times pep_mpi_allreduce_sum, the rank-ordered sum and the exchange (both
 *                      sums) on N floats (not a test)
 * A failed check prints "CHECK FAILED" and MPI_Aborts, so a broken rank never hangs the others.
 * MPI_Allreduce and MPI_Bcast are counted through the MPI profiling interface (PMPI) to see the
 * chunking. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "pep_mpi.h"
#include "placement.h"

static int allreduce_calls, bcast_calls;

/* PMPI wrappers: the real MPI_Allreduce and MPI_Bcast, counted. */
int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm)
{
    allreduce_calls++;
    return PMPI_Allreduce(sendbuf, recvbuf, count, type, op, comm);
}

int MPI_Bcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm)
{
    bcast_calls++;
    return PMPI_Bcast(buf, count, type, root, comm);
}

static struct pep_mpi_ctx ctx;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "[rank %d] CHECK FAILED %s:%d: %s: ", ctx.rank, __FILE__,     \
                    __LINE__, #cond);                                                     \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                        \
            fflush(stderr);                                                               \
            MPI_Abort(MPI_COMM_WORLD, 3);                                                 \
        }                                                                                 \
    } while (0)
#define CHECK_OK(expr)                                                                    \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        CHECK(rc_ == PEP_OK, "%s -> %s: %s", #expr, pep_status_name(rc_), pep_error_message()); \
    } while (0)

/* Deterministic non-integer value of rank r at index i, the same bits in every process and
 * every loop: integer hash, one correctly rounded division, one subtraction (no libm call,
 * whose vectorised variant may round differently, and nothing to contract into an FMA). */
static float value(int r, size_t i)
{
    unsigned h = ((unsigned)i * 2654435761u + (unsigned)r * 40503u) % 100003u;
    return (float)h / 7.0f - 7000.0f;
}

static void check_allreduce(void)
{
    const size_t sizes[] = {0, 1, 6, 7, 8, 1000, 12345};
    const size_t chunks[] = {7, 1000, 0};
    int P = ctx.size;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        pep_mpi_set_chunk(chunks[c]);
        size_t chunk = pep_mpi_chunk();
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            float *buf = malloc((n + 1) * sizeof *buf), *ref = malloc((n + 1) * sizeof *ref);
            CHECK(buf && ref, "malloc");
            /* integers: the sum is exact whatever the order */
            for (size_t i = 0; i < n; i++) buf[i] = (float)((ctx.rank + 1) * (int)(i % 1000));
            allreduce_calls = 0;
            CHECK_OK(pep_mpi_allreduce_sum(buf, n, ctx.comm));
            CHECK(allreduce_calls == (int)((n + chunk - 1) / chunk), "n=%zu chunk=%zu: %d MPI_Allreduce calls",
                  n, chunk, allreduce_calls);
            for (size_t i = 0; i < n; i++)
                CHECK(buf[i] == (float)(P * (P + 1) / 2 * (int)(i % 1000)), "n=%zu chunk=%zu i=%zu: %g", n, chunk, i,
                      (double)buf[i]);
            /* non-integers, rank order: ((b0 + b1) + b2) + ... bit for bit, on every rank */
            for (size_t i = 0; i < n; i++) {
                buf[i] = value(ctx.rank, i);
                float acc = value(0, i);
                for (int r = 1; r < P; r++) acc = acc + value(r, i);
                ref[i] = acc;
            }
            if (P >= 4 && n == 12345) {
                /* the check can fail: pairwise order (b0 + b1) + (b2 + b3) + ... gives other bits */
                size_t differ = 0;
                for (size_t i = 0; i < n; i++) {
                    float pairs = value(0, i) + value(1, i);
                    for (int r = 2; r < P; r += 2) pairs = pairs + (r + 1 < P ? value(r, i) + value(r + 1, i) : value(r, i));
                    if (pairs != ref[i]) differ++;
                }
                CHECK(differ > 0, "test values are insensitive to summation order");
                if (ctx.rank == 0) pep_info("pairwise order differs from rank order at %zu of %zu sums", differ, n);
            }
            CHECK_OK(pep_mpi_allreduce_sum_ordered(buf, n, ctx.comm));
            CHECK(n == 0 || memcmp(buf, ref, n * sizeof *buf) == 0, "ordered sum differs from rank-order fold (n=%zu chunk=%zu)", n, chunk);
            /* the fast sum: close to the ordered one and identical on every rank */
            for (size_t i = 0; i < n; i++) buf[i] = value(ctx.rank, i);
            ctx.ordered = 0;
            CHECK_OK(pep_mpi_reduce_grad(buf, n, &ctx));
            for (size_t i = 0; i < n; i++) CHECK(fabsf(buf[i] - ref[i]) <= 1e-5f * (float)P * 15000.0f, "i=%zu %g vs %g", i, (double)buf[i], (double)ref[i]);
            memcpy(ref, buf, n * sizeof *buf);
            if (n) CHECK(MPI_Bcast(ref, (int)n, MPI_FLOAT, 0, ctx.comm) == MPI_SUCCESS, "bcast");
            CHECK(n == 0 || memcmp(buf, ref, n * sizeof *buf) == 0, "ranks disagree on the MPI_SUM result");
            free(buf);
            free(ref);
        }
    }
    pep_mpi_set_chunk(0);
    CHECK(pep_mpi_chunk() == (size_t)1 << 28, "default chunk %zu", pep_mpi_chunk());
}

/* pep_mpi_bcast: the root's bytes on every rank bit for bit (NaN payloads, -0, subnormals, an odd
 * tail), from the first and the last rank, in one MPI_Bcast per chunk. */
static void check_bcast(void)
{
    const size_t sizes[] = {0, 1, 27, 28, 29, 4099, 100003};
    const size_t chunks[] = {7, 1000, 0};
    const uint32_t words[] = {0x7fc00001u, 0xffa00000u, 0x80000000u, 0x00000001u, 0x7f7fffffu};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        pep_mpi_set_chunk(chunks[c]);
        size_t chunk_bytes = pep_mpi_chunk() * sizeof(float);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            unsigned char *buf = malloc(n + 1), *want = malloc(n + 1);
            CHECK(buf && want, "malloc");
            for (int root = 0; root < ctx.size; root += ctx.size > 1 ? ctx.size - 1 : 1) {
                for (size_t i = 0; i < n; i++) {
                    uint32_t w = words[(i / 4) % 5];
                    want[i] = (unsigned char)(w >> (8 * (i % 4))) ^ (unsigned char)(i / 20);
                    buf[i] = ctx.rank == root ? want[i] : 0xaa;
                }
                bcast_calls = 0;
                CHECK_OK(pep_mpi_bcast(buf, n, root, ctx.comm));
                CHECK(bcast_calls == (int)((n + chunk_bytes - 1) / chunk_bytes), "n=%zu chunk=%zu bytes: %d MPI_Bcast calls",
                      n, chunk_bytes, bcast_calls);
                CHECK(n == 0 || memcmp(buf, want, n) == 0, "n=%zu root=%d chunk=%zu: bytes differ from the root's", n,
                      root, chunk_bytes);
            }
            free(buf);
            free(want);
        }
    }
    pep_mpi_set_chunk(0);
}

/* Every rank holds the same bits in buf[0..n). */
static void check_same_on_all(const float *buf, size_t n, const char *what)
{
    float *r0 = malloc((n + 1) * sizeof *r0);
    CHECK(r0 != NULL, "malloc");
    memcpy(r0, buf, n * sizeof *r0);
    if (n) CHECK(MPI_Bcast(r0, (int)n, MPI_FLOAT, 0, ctx.comm) == MPI_SUCCESS, "bcast");
    CHECK(n == 0 || memcmp(r0, buf, n * sizeof *r0) == 0, "%s: ranks hold different sums", what);
    free(r0);
}

/* The exchange test buffer of rank r: a row table of NR rows x W floats at offset RB, then dense
 * values. Rank r touches row j when hash(r, j) says so (some rows no rank touches); untouched
 * rows are zero, as the word-embedding meta-gradient is. */
#define XN 20011
#define XRB 0
#define XNR 701
#define XW 13
static int touched(int r, int j) { return ((unsigned)j * 2654435761u + (unsigned)r * 97u) % 7u < 2u; }
static void exchange_input(float *buf, int *ids, int *nids)
{
    *nids = 0;
    for (size_t i = 0; i < XN; i++) buf[i] = value(ctx.rank, i);
    for (int j = 0; j < XNR; j++) {
        if (touched(ctx.rank, j)) ids[(*nids)++] = j;
        else memset(buf + XRB + (size_t)j * XW, 0, XW * sizeof(float));
    }
}

/* One exchange of the test buffer. pattern 0: nothing reported ready (all posted by finish);
 * 1: ranges reported top down; 2: rank-dependent shuffled ranges, rank 0 reports none. */
static void run_exchange(float *buf, int ordered, int sparse, int shard, size_t bucket, int inflight, int pattern,
                         struct pep_exchange_stats *st)
{
    int ids[XNR], nids;
    exchange_input(buf, ids, &nids);
    struct pep_exchange_opts o = {.ordered = ordered, .bucket = bucket, .max_inflight = inflight, .shard = shard};
    if (sparse) o.rows_begin = XRB, o.nrows = XNR, o.width = XW;
    struct pep_exchange *x = NULL;
    CHECK_OK(pep_exchange_create(ctx.comm, XN, &o, &x));
    CHECK_OK(pep_exchange_begin(x, buf));
    pep_exchange_mark_rows(x, ids, (size_t)nids);
    if (pattern > 0 && !(pattern == 2 && ctx.rank == 0)) {
        enum { NR = 37 };
        size_t cut[NR + 1];
        for (int i = 0; i <= NR; i++) cut[i] = (size_t)XN * (size_t)i / NR;
        int order[NR];
        for (int i = 0; i < NR; i++) order[i] = NR - 1 - i;
        if (pattern == 2) /* a rank-dependent permutation */
            for (int i = NR - 1; i > 0; i--) {
                int j = (int)(((unsigned)i * 40503u + (unsigned)ctx.rank * 977u) % (unsigned)(i + 1)), t = order[i];
                order[i] = order[j], order[j] = t;
            }
        for (int i = 0; i < NR; i++) CHECK_OK(pep_exchange_ready(x, cut[order[i]], cut[order[i] + 1]));
    }
    CHECK_OK(pep_exchange_finish(x, st));
    /* sharded: each rank holds the sum on its slice; the allgather makes the whole buffer */
    if (shard) CHECK_OK(pep_exchange_allgather(x, NULL, buf));
    pep_exchange_destroy(&x);
    CHECK(x == NULL, "destroy leaves the handle");
}

/* Sharded slices: they tile the buffer in rank order, about 1/P each, and an allgather from
 * separate slice buffers (as the moments are gathered for a checkpoint) puts each in place. */
static void check_exchange_slices(void)
{
    struct pep_exchange_opts o = {.bucket = 997, .shard = 1};
    struct pep_exchange *x = NULL;
    CHECK_OK(pep_exchange_create(ctx.comm, XN, &o, &x));
    size_t lo, hi;
    pep_exchange_slice(x, &lo, &hi);
    size_t all[2] = {lo, hi}, *every = malloc(2 * (size_t)ctx.size * sizeof *every);
    CHECK(every != NULL, "malloc");
    CHECK(MPI_Allgather(all, 2, MPI_UINT64_T, every, 2, MPI_UINT64_T, ctx.comm) == MPI_SUCCESS, "allgather");
    for (int r = 0; r < ctx.size; r++) {
        CHECK(every[2 * r] == (r ? every[2 * r - 1] : 0), "slice %d does not follow slice %d", r, r - 1);
        CHECK(every[2 * r + 1] - every[2 * r] <= XN / (size_t)ctx.size + 16, "slice %d too long", r);
    }
    CHECK(every[2 * ctx.size - 1] == XN, "the slices do not end at the buffer's end");
    float *mine = malloc((hi - lo + 1) * sizeof *mine), *out = calloc(XN, sizeof *out);
    CHECK(mine && out, "malloc");
    for (size_t i = lo; i < hi; i++) mine[i - lo] = (float)(1000 * ctx.rank) + (float)(i % 997);
    CHECK_OK(pep_exchange_allgather(x, mine, out));
    for (int r = 0; r < ctx.size; r++)
        for (size_t i = every[2 * r]; i < every[2 * r + 1]; i++)
            CHECK(out[i] == (float)(1000 * r) + (float)(i % 997), "allgather: float %zu of rank %d's slice", i, r);
    pep_exchange_destroy(&x);
    free(mine);
    free(out);
    free(every);
}

static void check_exchange(void)
{
    int P = ctx.size;
    float *ref = malloc(XN * sizeof *ref), *fast = malloc(XN * sizeof *fast), *buf = malloc(XN * sizeof *buf);
    int ids[XNR], nids;
    CHECK(ref && fast && buf, "malloc");
    /* the blocking references: the rank-ordered sum, and MPI_Allreduce */
    exchange_input(ref, ids, &nids);
    CHECK_OK(pep_mpi_allreduce_sum_ordered(ref, XN, ctx.comm));
    exchange_input(fast, ids, &nids);
    CHECK_OK(pep_mpi_allreduce_sum(fast, XN, ctx.comm));
    size_t unions = 0;
    for (int j = 0; j < XNR; j++) {
        int any = 0;
        for (int r = 0; r < P; r++) any |= touched(r, j);
        unions += (size_t)any;
    }
    CHECK(unions < XNR, "some rows must be touched by no rank");
    float *dense_mpi = malloc(XN * sizeof *dense_mpi);
    CHECK(dense_mpi != NULL, "malloc");
    const size_t buckets[] = {61, 1000, 100000};
    const int inflights[] = {1, 8};
    check_exchange_slices();
    for (int shard = 0; shard <= 1; shard++)
    for (int ordered = 1; ordered >= 0; ordered--)
        for (int sparse = 0; sparse <= 1; sparse++)
            for (size_t bi = 0; bi < 3; bi++)
                for (int ii = 0; ii < 2; ii++)
                    for (int pattern = 0; pattern <= 2; pattern++) {
                        struct pep_exchange_stats st;
                        run_exchange(buf, ordered, sparse, shard, buckets[bi], inflights[ii], pattern, &st);
                        char what[160];
                        snprintf(what, sizeof what, "%s sum%s, sparse %d, bucket %zu, in flight %d, pattern %d",
                                 ordered ? "ordered" : "MPI", shard ? " sharded + allgather" : "", sparse, buckets[bi],
                                 inflights[ii], pattern);
                        check_same_on_all(buf, XN, what);
                        if (ordered) {
                            /* bit for bit the blocking rank-ordered sum */
                            CHECK(memcmp(buf, ref, XN * sizeof *buf) == 0, "%s differs from the blocking ordered sum", what);
                        } else if (!shard && !sparse && bi == 0 && ii == 0 && pattern == 0) {
                            memcpy(dense_mpi, buf, XN * sizeof *buf); /* the first: the blocking dense exchange */
                        } else {
                            /* the same bits as the blocking dense exchange, whatever the buckets,
                             * the order ranges became ready in, and the sparse rows */
                            CHECK(memcmp(buf, dense_mpi, XN * sizeof *buf) == 0, "%s differs from the blocking dense one", what);
                        }
                        if (!ordered) {
                            for (size_t i = 0; i < XN; i++)
                                CHECK(fabsf(buf[i] - ref[i]) <= 1e-5f * (float)P * 15000.0f, "%s: i=%zu %g vs %g", what,
                                      i, (double)buf[i], (double)ref[i]);
                            /* two ranks: one addition per float, whatever the algorithm */
                            if (P <= 2) CHECK(memcmp(buf, fast, XN * sizeof *buf) == 0, "%s differs from MPI_Allreduce", what);
                        }
                        size_t want_rows = sparse ? unions : 0;
                        CHECK(st.rows == want_rows, "%s: %zu rows in the union, expected %zu", what, st.rows, want_rows);
                        double want_bytes = sparse ? 4.0 * (double)(XN - XNR * XW + want_rows * XW) + 8.0 * ((XNR + 63) / 64)
                                                   : 4.0 * XN;
                        CHECK(st.bytes == want_bytes && st.dense_bytes == 4.0 * XN, "%s: %g bytes, expected %g", what,
                              st.bytes, want_bytes);
                        if (P > 1 && pattern == 1 && ii == 1 && bi == 1)
                            CHECK(st.early > 0 && st.early <= st.buckets, "%s: %d of %d buckets posted early", what,
                                  st.early, st.buckets);
                        if (P > 1 && pattern == 0) CHECK(st.early == 0, "%s: %d posted early", what, st.early);
                    }
    /* a sparse sum equals the dense one only if untouched rows are zero: show the test can fail */
    if (P > 1) {
        exchange_input(buf, ids, &nids);
        struct pep_exchange_opts o = {.ordered = 1, .bucket = 1000, .rows_begin = XRB, .nrows = XNR, .width = XW};
        struct pep_exchange *x = NULL;
        CHECK_OK(pep_exchange_create(ctx.comm, XN, &o, &x));
        CHECK_OK(pep_exchange_begin(x, buf));
        pep_exchange_mark_rows(x, ids, 0); /* no rank marks its touched rows */
        CHECK_OK(pep_exchange_finish(x, NULL));
        pep_exchange_destroy(&x);
        int differ = memcmp(buf, ref, XN * sizeof *buf) != 0, any = 0;
        CHECK(MPI_Allreduce(&differ, &any, 1, MPI_INT, MPI_MAX, ctx.comm) == MPI_SUCCESS, "allreduce");
        CHECK(any, "an unmarked touched row went unnoticed");
    }
    free(dense_mpi);
    free(ref);
    free(fast);
    free(buf);
}

static void check_agree(void)
{
    int P = ctx.size, last = P - 1;
    /* everyone fine */
    pep_error_clear();
    CHECK(pep_mpi_agree(PEP_OK, ctx.comm) == PEP_OK, "all-OK agreement");
    CHECK(pep_error_code() == PEP_OK, "error recorded after all-OK agreement");
    /* the last rank fails to read a file */
    int st = PEP_OK;
    if (ctx.rank == last) st = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "bad.txt:3: cannot parse tag 'B-XXX'");
    int agreed = pep_mpi_agree(st, ctx.comm);
    CHECK(agreed == PEP_ERR_IO, "agreed %d", agreed);
    if (ctx.rank == last) {
        CHECK(!strcmp(pep_error_message(), "bad.txt:3: cannot parse tag 'B-XXX'"), "own message changed: %s", pep_error_message());
    } else {
        char want[256];
        snprintf(want, sizeof want, "rank %d: bad.txt:3: cannot parse tag 'B-XXX'", last);
        CHECK(!strcmp(pep_error_message(), want), "got '%s'", pep_error_message());
        CHECK(pep_error_code() == PEP_ERR_IO, "code %d", pep_error_code());
    }
    pep_error_clear();
    if (P >= 2) {
        /* rank 0: I/O error (2), last rank: numeric (5): the larger wins everywhere */
        st = PEP_OK;
        if (ctx.rank == 0) st = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "io on rank 0");
        if (ctx.rank == last) st = pep_error_set(PEP_ERR_NUMERIC, __FILE__, __LINE__, __func__, "nan on last rank");
        CHECK(pep_mpi_agree(st, ctx.comm) == PEP_ERR_NUMERIC, "max status");
        if (ctx.rank == 0) CHECK(!strcmp(pep_error_message(), "io on rank 0"), "rank 0 keeps its own: %s", pep_error_message());
        else if (ctx.rank != last) CHECK(strstr(pep_error_message(), "nan on last rank") != NULL, "%s", pep_error_message());
        pep_error_clear();
        /* the same status on every rank: the lowest rank's message is broadcast */
        char own[64];
        snprintf(own, sizeof own, "failure on rank %d", ctx.rank);
        st = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s", own);
        CHECK(pep_mpi_agree(st, ctx.comm) == PEP_ERR_FORMAT, "format");
        CHECK(!strcmp(pep_error_message(), own), "each failing rank keeps its message");
        pep_error_clear();
        /* a failing rank with no message recorded: the status name travels */
        st = ctx.rank == 1 ? PEP_ERR_NOMEM : PEP_OK;
        CHECK(pep_mpi_agree(st, ctx.comm) == PEP_ERR_NOMEM, "nomem");
        if (ctx.rank != 1) CHECK(!strcmp(pep_error_message(), "rank 1: out of memory"), "%s", pep_error_message());
        pep_error_clear();
    }
}

/* Reads the first byte of a file the way a data loader would: an error names the file. */
static int load_local_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    PEP_CHECK(f != NULL, PEP_ERR_IO, "%s: cannot open (%s); check data.root / $PEPRIME_DATA", path, strerror(errno));
    fclose(f);
    return PEP_OK;
}

static int fault_agree(int bad_rank, const char *self)
{
    const char *path = ctx.rank == bad_rank ? "/nonexistent/peprime-fault/train.txt" : self;
    int st = pep_mpi_agree(load_local_file(path), ctx.comm);
    if (st != PEP_OK) {
        pep_log(PEP_LOG_ERROR, "%s", pep_error_message());
        return st;
    }
    pep_info("fault-agree: no rank failed (unexpected)");
    return PEP_OK;
}

static int fault_abort(int bad_rank)
{
    float grad[64];
    for (int i = 0; i < 64; i++) grad[i] = (float)i;
    float loss = ctx.rank == bad_rank ? logf(0.0f) - logf(0.0f) : 1.0f; /* -inf - -inf = nan */
    if (!isfinite(loss)) pep_abort(PEP_ERR_NUMERIC, "non-finite query loss %g on rank %d: lower maml.inner_lr", (double)loss, ctx.rank);
    /* the healthy ranks wait here for a contribution that never comes */
    int rc = pep_mpi_allreduce_sum(grad, 64, ctx.comm);
    fprintf(stderr, "[rank %d] returned from the allreduce (rc %d): the abort did not stop the job\n", ctx.rank, rc);
    return PEP_ERR_INTERNAL;
}

static void check_placement(int threads)
{
    hwloc_topology_t topo;
    hwloc_bitmap_t before = hwloc_bitmap_alloc(), after = hwloc_bitmap_alloc();
    CHECK(hwloc_topology_init(&topo) == 0 && hwloc_topology_load(topo) == 0, "hwloc");
    CHECK(hwloc_get_cpubind(topo, before, HWLOC_CPUBIND_PROCESS) == 0, "get_cpubind");
    struct pep_placement p;
    CHECK_OK(pep_placement_setup(ctx.comm, threads, &p));
    CHECK(hwloc_get_cpubind(topo, after, HWLOC_CPUBIND_PROCESS) == 0, "get_cpubind");
    char a[256], b[256], c[256];
    hwloc_bitmap_list_snprintf(a, sizeof a, after);
    hwloc_bitmap_list_snprintf(b, sizeof b, p.cpuset);
    hwloc_bitmap_list_snprintf(c, sizeof c, before);
    CHECK(hwloc_bitmap_isequal(after, p.cpuset), "bound to %s, plan says %s", a, b);
    CHECK(hwloc_bitmap_isincluded(p.cpuset, before), "left the original binding %s for %s", c, b);
    /* the plan's threads are peprime's pools' (core/gemm.h): OpenBLAS is held to one */
    CHECK(openblas_get_num_threads() == 1, "openblas threads %d, want 1 (plan %d)", openblas_get_num_threads(), p.threads);
    int ncores_before = 0;
    for (int i = 0; i < hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE); i++)
        if (hwloc_bitmap_intersects(hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)i)->cpuset, before)) ncores_before++;
    CHECK(p.threads >= 1 && p.threads <= p.ncores && p.ncores <= ncores_before, "threads %d cores %d of %d",
          p.threads, p.ncores, ncores_before);
    if (threads > 0) CHECK(p.threads == (threads < p.ncores ? threads : p.ncores), "requested %d got %d", threads, p.threads);
    /* ranks with the same starting binding: disjoint cores unless there are more ranks than cores */
    hwloc_bitmap_t others = hwloc_bitmap_alloc();
    char mine[256] = {0}, *all = calloc((size_t)ctx.size, 256), *orig = calloc((size_t)ctx.size, 256);
    hwloc_bitmap_list_snprintf(mine, sizeof mine, p.cpuset);
    CHECK(MPI_Allgather(mine, 256, MPI_CHAR, all, 256, MPI_CHAR, ctx.comm) == MPI_SUCCESS, "allgather");
    CHECK(MPI_Allgather(c, 256, MPI_CHAR, orig, 256, MPI_CHAR, ctx.comm) == MPI_SUCCESS, "allgather");
    int same = 0, overlap = 0;
    for (int r = 0; r < ctx.size; r++) {
        if (strcmp(orig + 256 * r, c) != 0) continue;
        same++;
        if (r == ctx.rank) continue;
        hwloc_bitmap_list_sscanf(others, all + 256 * r);
        if (hwloc_bitmap_intersects(others, p.cpuset)) overlap++;
    }
    CHECK(p.group_size == same, "group %d, %d ranks share the binding", p.group_size, same);
    CHECK(overlap == 0 || same > ncores_before, "%d ranks overlap though %d ranks <= %d cores", overlap, same, ncores_before);
    CHECK(p.shared == (same > ncores_before), "shared flag %d", p.shared);
    /* balanced split: the first (cores mod ranks) ranks of the group get one core more */
    if (!p.shared) {
        int want = ncores_before / same + (p.group_rank < ncores_before % same ? 1 : 0);
        CHECK(p.ncores == want, "%d cores, expected %d (%d cores shared by %d ranks)", p.ncores, want, ncores_before, same);
    }
    if (hwloc_bitmap_isequal(before, hwloc_topology_get_allowed_cpuset(topo)))
        pep_info("placement: rank %d started unbound, got %d core(s)", ctx.rank, p.ncores);
    pep_info("placement: all checks passed");
    free(all);
    free(orig);
    hwloc_bitmap_free(others);
    hwloc_bitmap_free(before);
    hwloc_bitmap_free(after);
    pep_placement_fini(&p);
    hwloc_topology_destroy(topo);
}

/* The blocking sums and the exchange (25 MiB buckets, all posted at finish) on n floats. */
static int bench_sum(int method, float *buf, size_t n)
{
    if (method < 2) return method ? pep_mpi_allreduce_sum_ordered(buf, n, ctx.comm) : pep_mpi_allreduce_sum(buf, n, ctx.comm);
    struct pep_exchange_opts o = {.ordered = method == 3};
    struct pep_exchange *x = NULL;
    int rc = pep_exchange_create(ctx.comm, n, &o, &x);
    if (rc == PEP_OK) rc = pep_exchange_begin(x, buf);
    if (rc == PEP_OK) rc = pep_exchange_finish(x, NULL);
    pep_exchange_destroy(&x);
    return rc;
}

static void bench(size_t n)
{
    static const char *const names[] = {"MPI_Allreduce", "rank-ordered", "exchange (MPI_Iallreduce)",
                                        "exchange (rank-ordered)"};
    float *buf = calloc(n ? n : 1, sizeof *buf);
    CHECK(buf != NULL, "calloc %zu floats", n);
    for (int method = 0; method < 4; method++) {
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            for (size_t i = 0; i < n; i++) buf[i] = value(ctx.rank, i);
            MPI_Barrier(ctx.comm);
            double t0 = MPI_Wtime();
            CHECK_OK(bench_sum(method, buf, n));
            double t = MPI_Wtime() - t0, tmax = 0;
            MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, ctx.comm);
            if (tmax < best) best = tmax;
        }
        pep_info("bench: %s sum of %zu floats on %d ranks: best of 5 %.2f ms (%.2f GB/s of buffer)", names[method], n,
                 ctx.size, best * 1e3, (double)n * 4 / best / 1e9);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    if (pep_mpi_init(&argc, &argv, &ctx) != PEP_OK) {
        fprintf(stderr, "mpi_check: %s\n", pep_error_message());
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "";
    int arg = argc > 2 ? atoi(argv[2]) : 0;
    int rc = PEP_OK;
    if (!strcmp(mode, "collectives")) {
        check_allreduce();
        check_bcast();
        check_agree();
        pep_info("collectives: all checks passed on %d ranks", ctx.size);
    } else if (!strcmp(mode, "exchange")) {
        check_exchange();
        pep_info("exchange: all checks passed on %d ranks", ctx.size);
    } else if (!strcmp(mode, "log")) {
        pep_info("info from rank %d", ctx.rank);
        pep_debug("debug from rank %d (hidden at the default level)", ctx.rank);
        pep_warn("warn from rank %d", ctx.rank);
    } else if (!strcmp(mode, "fault-agree")) {
        rc = fault_agree(arg, argv[0]);
    } else if (!strcmp(mode, "fault-abort")) {
        rc = fault_abort(arg);
    } else if (!strcmp(mode, "bench")) {
        bench(argc > 2 ? strtoull(argv[2], NULL, 10) : 0);

    } else if (!strcmp(mode, "placement")) {
        check_placement(arg);
    } else {
        fprintf(stderr, "mpi_check: unknown mode '%s'\n", mode);
        rc = PEP_ERR_USAGE;
    }
    pep_mpi_finalize(&ctx);
    return rc;
}
