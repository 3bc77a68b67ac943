/* The bucketed, overlapped and sparse meta-gradient exchange (exchange.h). */
#include "exchange.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/partition.h"
#include "mpi_call.h"

/* A bucket's life: waiting -> phase 1 posted -> (ordered: summed -> phase 2 posted) -> done. */
enum { BK_WAITING, BK_PHASE1, BK_SUMMED, BK_PHASE2, BK_DONE };

struct bucket {
    size_t off, len;   /* dense: floats [off, off + len) of the buffer; rows: of the packed rows */
    int packed;        /* 1: a piece of the packed rows */
    size_t ready;      /* floats reported final (dense buckets) */
    int state, early;  /* early: posted inside pep_exchange_ready */
    MPI_Request req;
    int slot;          /* ordered or scatter: its scratch buffer in the pool */
    int scatter;       /* sharded dense bucket: reduce-scattered to the slices, no phase 2 */
    int *counts, *displs, *rcounts, *rdispls; /* ordered or sharded: (size) each */
};

struct pep_exchange {
    MPI_Comm comm;      /* phase 1 (MPI_Iallreduce or MPI_Ialltoallv) and the row bitmap, in bucket order */
    MPI_Comm comm2;     /* ordered: phase 2 (MPI_Iallgatherv), also in bucket order: a phase 2 becomes
                           ready when its phase 1 completes, which differs between ranks, so it gets a
                           communicator of its own and waits for its turn */
    int rank, size;
    struct pep_exchange_opts o;
    size_t n;
    float *buf;
    struct bucket *bk;  /* dense buckets (top of the buffer first), then the packed rows' buckets */
    int ndense, nbk, cap;
    int next;           /* the next bucket to post: every rank posts in this order */
    int next2;          /* ordered: the next bucket whose phase 2 to post */
    int inflight;
    uint64_t *bitmap;   /* (nwords) touched rows, then their union */
    size_t nwords;
    float *packed;      /* (packed_rows * width) the union's rows, gathered; grown to the largest union */
    size_t packed_rows;
    int *counts_pool;   /* ordered or sharded: 4 * size ints per bucket */
    float **scratch;    /* ordered: max_inflight buffers of (size, own segment of a bucket); sharded:
                           of the own part of a bucket (ordered: size times that) */
    size_t lo, hi;      /* this rank's slice (sharded), else [0, n) */
    size_t *slo, *shi;  /* sharded, size > 1: every rank's slice */
    int *gcounts, *gdispls; /* sharded: the allgather's (size) each */
    int *scratch_used;
    struct pep_exchange_stats st;
};

static int has_rows(const struct pep_exchange *x) { return x->o.nrows > 0; }
static float *bucket_ptr(const struct pep_exchange *x, const struct bucket *k)
{
    return (k->packed ? x->packed : x->buf) + k->off;
}

int pep_exchange_create(MPI_Comm comm, size_t n, const struct pep_exchange_opts *o, struct pep_exchange **out)
{
    *out = NULL;
    int rc = PEP_OK;
    struct pep_exchange *x = NULL;
    PEP_ALLOC(x, 1);
    x->comm = x->comm2 = MPI_COMM_NULL;
    x->o = *o;
    x->n = n;
    if (!x->o.bucket) x->o.bucket = PEP_EXCHANGE_DEFAULT_BUCKET;
    if (x->o.bucket > (size_t)INT_MAX) x->o.bucket = (size_t)INT_MAX;
    if (x->o.max_inflight <= 0) x->o.max_inflight = 8;
    size_t B = x->o.bucket, rb = o->rows_begin, re = o->rows_begin + o->nrows * o->width;
    PEP_CHECK_GOTO(rc, !o->nrows || (o->width > 0 && re <= n), PEP_ERR_INTERNAL,
                   "exchange: row table [%zu, %zu) outside the buffer of %zu floats", rb, re, n);
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_dup(comm, &x->comm));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_set_errhandler(x->comm, MPI_ERRORS_RETURN));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_rank(x->comm, &x->rank));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_size(x->comm, &x->size));
    if (o->ordered) {
        PEP_CALL_MPI_GOTO(rc, MPI_Comm_dup(comm, &x->comm2));
        PEP_CALL_MPI_GOTO(rc, MPI_Comm_set_errhandler(x->comm2, MPI_ERRORS_RETURN));
    }
    /* dense segments (above and below the row table), each cut top down into buckets */
    size_t seg_b[2] = {has_rows(x) ? re : 0, 0}, seg_e[2] = {n, has_rows(x) ? rb : 0};
    int ndense = 0;
    for (int s = 0; s < 2; s++) ndense += (int)((seg_e[s] - seg_b[s] + B - 1) / B);
    int nrowbk = has_rows(x) ? (int)((o->nrows * o->width + B - 1) / B) : 0;
    x->cap = ndense + nrowbk;
    PEP_ALLOC_GOTO(rc, x->bk, x->cap > 0 ? x->cap : 1);
    for (int s = 0; s < 2; s++)
        for (size_t e = seg_e[s]; e > seg_b[s];) {
            size_t b = e - seg_b[s] > B ? e - B : seg_b[s];
            x->bk[x->ndense].off = b, x->bk[x->ndense].len = e - b;
            x->ndense++;
            e = b;
        }
    x->nbk = x->ndense;
    if (has_rows(x)) {
        x->nwords = (o->nrows + 63) / 64;
        PEP_ALLOC_GOTO(rc, x->bitmap, x->nwords);
    }
    x->lo = 0, x->hi = n;
    int shard = o->shard && x->size > 1;
    if (shard) {
        size_t align = o->align ? o->align : 16;
        PEP_ALLOC_GOTO(rc, x->slo, (size_t)x->size);
        PEP_ALLOC_GOTO(rc, x->shi, (size_t)x->size);
        PEP_ALLOC_GOTO(rc, x->gcounts, (size_t)x->size);
        PEP_ALLOC_GOTO(rc, x->gdispls, (size_t)x->size);
        for (int j = 0; j < x->size; j++) pep_partition_slice(j, x->size, n, align, &x->slo[j], &x->shi[j]);
        x->lo = x->slo[x->rank], x->hi = x->shi[x->rank];
        /* MPI's displacements are ints: the allgather places slices by offset */
        PEP_CHECK_GOTO(rc, n <= (size_t)INT_MAX, PEP_ERR_USAGE,
                       "exchange: a sharded outer step over %zu floats (more than INT_MAX): set maml.outer_shard = false", n);
    }
    if ((o->ordered || shard) && x->size > 1) {
        PEP_ALLOC_GOTO(rc, x->counts_pool, 4 * (size_t)x->size * (size_t)(x->cap > 0 ? x->cap : 1));
        for (int k = 0; k < x->cap; k++) {
            int *c = x->counts_pool + 4 * (size_t)x->size * (size_t)k;
            x->bk[k].counts = c, x->bk[k].displs = c + x->size;
            x->bk[k].rcounts = c + 2 * x->size, x->bk[k].rdispls = c + 3 * x->size;
        }
    }
    if (o->ordered && x->size > 1) {
        PEP_ALLOC_GOTO(rc, x->scratch, x->o.max_inflight);
        PEP_ALLOC_GOTO(rc, x->scratch_used, x->o.max_inflight);
        size_t seg = (B + (size_t)x->size - 1) / (size_t)x->size; /* a rank's segment of a bucket, at most */
        size_t len = seg * (size_t)x->size;
        if (shard) {
            /* a rank receives its whole own part of a bucket (at most a bucket, at most its slice)
             * from every rank: P times the scratch of a split bucket, so 1/P as many in flight
             * keep the scratch at most max_inflight buckets, as unsharded */
            size_t own = x->hi - x->lo < B ? x->hi - x->lo : B;
            if (own * (size_t)x->size > len) len = own * (size_t)x->size; /* (packed rows still split evenly) */
            x->o.max_inflight = x->o.max_inflight / x->size > 0 ? x->o.max_inflight / x->size : 1;
        }
        for (int i = 0; i < x->o.max_inflight; i++) PEP_ALLOC_GOTO(rc, x->scratch[i], len);
    }
    *out = x;
    return PEP_OK;
cleanup:
    pep_exchange_destroy(&x);
    return rc;
}

void pep_exchange_destroy(struct pep_exchange **px)
{
    if (!px || !*px) return;
    struct pep_exchange *x = *px;
    if (x->comm != MPI_COMM_NULL) MPI_Comm_free(&x->comm);
    if (x->comm2 != MPI_COMM_NULL) MPI_Comm_free(&x->comm2);
    if (x->scratch)
        for (int i = 0; i < x->o.max_inflight; i++) pep_free(x->scratch[i]);
    pep_free(x->scratch);
    pep_free(x->scratch_used);
    pep_free(x->counts_pool);
    pep_free(x->bitmap);
    pep_free(x->slo);
    pep_free(x->shi);
    pep_free(x->gcounts);
    pep_free(x->gdispls);
    pep_free(x->packed);
    pep_free(x->bk);
    pep_free(x);
    *px = NULL;
}

int pep_exchange_begin(struct pep_exchange *x, float *buf)
{
    PEP_CHECK(buf != NULL || x->n == 0, PEP_ERR_INTERNAL, "pep_exchange_begin: NULL buffer");
    x->buf = buf;
    x->nbk = x->ndense;
    x->next = x->next2 = 0;
    x->inflight = 0;
    for (int k = 0; k < x->ndense; k++) {
        struct bucket *b = &x->bk[k];
        b->ready = 0, b->state = BK_WAITING, b->early = 0, b->packed = 0, b->scatter = 0, b->req = MPI_REQUEST_NULL;
    }
    if (x->bitmap) memset(x->bitmap, 0, x->nwords * sizeof *x->bitmap);
    memset(&x->st, 0, sizeof x->st);
    return PEP_OK;
}

void pep_exchange_mark_rows(struct pep_exchange *x, const int *ids, size_t n)
{
    if (!x->bitmap) return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && (size_t)ids[i] < x->o.nrows) x->bitmap[ids[i] / 64] |= (uint64_t)1 << (ids[i] % 64);
}

/* A free scratch buffer for bucket b. */
static int take_slot(struct pep_exchange *x, struct bucket *b)
{
    b->slot = -1;
    for (int i = 0; i < x->o.max_inflight && b->slot < 0; i++)
        if (!x->scratch_used[i]) b->slot = i;
    PEP_CHECK(b->slot >= 0, PEP_ERR_INTERNAL, "exchange: no free scratch for a bucket in flight");
    x->scratch_used[b->slot] = 1;
    return PEP_OK;
}

/* Posts bucket k (the next in order). Ordered: phase 1 is the reduce-scatter's exchange
 * (rank j receives segment j of every rank's bucket); plain: one in-place MPI_Iallreduce.
 * Sharded dense buckets: segment j is the bucket's part inside rank j's slice, and the plain
 * sum is an MPI_Ireduce_scatter into scratch. */
static int post(struct pep_exchange *x, struct bucket *b)
{
    float *p = bucket_ptr(x, b);
    int P = x->size;
    b->scatter = x->slo != NULL && !b->packed;
    if (b->scatter) {
        size_t e = b->off + b->len;
        for (int j = 0; j < P; j++) {
            size_t lo = x->slo[j] > b->off ? x->slo[j] : b->off, hi = x->shi[j] < e ? x->shi[j] : e;
            if (lo > e) lo = e;
            b->counts[j] = hi > lo ? (int)(hi - lo) : 0;
            b->displs[j] = (int)(lo - b->off);
        }
    }
    if (!x->o.ordered && b->scatter) {
        /* in place: the own part's sum lands at the bucket's start (complete() moves it); the rest
         * of the bucket is other ranks' slices, which this rank does not need summed */
        PEP_CALL_MPI(MPI_Ireduce_scatter(MPI_IN_PLACE, p, b->counts, MPI_FLOAT, MPI_SUM, x->comm, &b->req));
    } else if (!x->o.ordered) {
        PEP_CALL_MPI(MPI_Iallreduce(MPI_IN_PLACE, p, (int)b->len, MPI_FLOAT, MPI_SUM, x->comm, &b->req));
    } else {
        if (!b->scatter) {
            size_t base = b->len / (size_t)P, extra = b->len % (size_t)P, pos = 0;
            for (int j = 0; j < P; j++) {
                b->counts[j] = (int)(base + ((size_t)j < extra ? 1 : 0));
                b->displs[j] = (int)pos;
                pos += (size_t)b->counts[j];
            }
        }
        int mine = b->counts[x->rank];
        for (int i = 0; i < P; i++) b->rcounts[i] = mine, b->rdispls[i] = i * mine;
        PEP_CALL(take_slot(x, b));
        PEP_CALL_MPI(MPI_Ialltoallv(p, b->counts, b->displs, MPI_FLOAT, x->scratch[b->slot], b->rcounts, b->rdispls,
                                    MPI_FLOAT, x->comm, &b->req));
    }
    b->state = BK_PHASE1;
    x->inflight++;
    x->st.buckets++;
    return PEP_OK;
}

/* A bucket whose request completed: ordered phase 1 -> add the own segment in rank order
 * ((b0 + b1) + b2) + ..., as pep_mpi_allreduce_sum_ordered does (phase 2 shares it, posted in
 * bucket order by post_phase2); otherwise done. */
static void complete(struct pep_exchange *x, struct bucket *b)
{
    if (b->state == BK_PHASE1 && b->scatter && !x->o.ordered) { /* the own part's sum, to its place */
        float *p = bucket_ptr(x, b);
        memmove(p + b->displs[x->rank], p, (size_t)b->counts[x->rank] * sizeof(float));
        b->state = BK_DONE;
        x->inflight--;
        return;
    }
    if (b->state == BK_PHASE1 && x->o.ordered) {
        int P = x->size, mine = b->counts[x->rank];
        const float *g = x->scratch[b->slot];
        float *seg = bucket_ptr(x, b) + b->displs[x->rank];
        for (int k = 0; k < mine; k++) {
            float acc = g[k];
            for (int i = 1; i < P; i++) acc = acc + g[(size_t)i * (size_t)mine + (size_t)k];
            seg[k] = acc;
        }
        x->scratch_used[b->slot] = 0;
        b->state = BK_SUMMED;
        if (b->scatter) b->state = BK_DONE, x->inflight--; /* sharded: the slice's owner has it, no phase 2 */
        return;
    }
    b->state = BK_DONE;
    x->inflight--;
}

/* Ordered: posts the summed buckets' phase 2 (the allgather of the segments), in bucket order. */
static int post_phase2(struct pep_exchange *x)
{
    while (x->o.ordered && x->next2 < x->next) {
        struct bucket *b = &x->bk[x->next2];
        if (b->scatter) { /* no phase 2 */
            x->next2++;
            continue;
        }
        if (b->state != BK_SUMMED) break;
        x->next2++;
        PEP_CALL_MPI(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bucket_ptr(x, b), b->counts, b->displs,
                                     MPI_FLOAT, x->comm2, &b->req));
        b->state = BK_PHASE2;
    }
    return PEP_OK;
}

/* Lets the buckets in flight progress; wait = 1: first waits for the oldest request in flight. */
static int progress(struct pep_exchange *x, int wait)
{
    for (int k = 0; k < x->next; k++) {
        struct bucket *b = &x->bk[k];
        if (b->state == BK_PHASE1 || b->state == BK_PHASE2) {
            int done = 0;
            if (wait) {
                PEP_CALL_MPI(MPI_Wait(&b->req, MPI_STATUS_IGNORE));
                done = 1, wait = 0;
            } else {
                PEP_CALL_MPI(MPI_Test(&b->req, &done, MPI_STATUS_IGNORE));
            }
            if (done) complete(x, b);
        }
        PEP_CALL(post_phase2(x));
    }
    return PEP_OK;
}

/* Posts, in order, every bucket that is complete (or all with force), as long as scratch allows. */
static int post_ready(struct pep_exchange *x, int force, int early)
{
    while (x->next < x->nbk) {
        struct bucket *b = &x->bk[x->next];
        if (!force && !b->packed && b->ready < b->len) break;
        if (x->inflight >= x->o.max_inflight) {
            if (!force) break;
            PEP_CALL(progress(x, 1));
            continue;
        }
        b->early = early;
        PEP_CALL(post(x, b));
        x->next++;
    }
    return PEP_OK;
}

int pep_exchange_ready(struct pep_exchange *x, size_t begin, size_t end)
{
    if (x->size == 1) return PEP_OK;
    double t0 = MPI_Wtime();
    PEP_CHECK(begin <= end && end <= x->n, PEP_ERR_INTERNAL, "exchange: ready range [%zu, %zu) outside %zu floats",
              begin, end, x->n);
    for (int k = 0; k < x->ndense; k++) { /* few buckets: a scan is cheaper than a search's bookkeeping */
        struct bucket *b = &x->bk[k];
        size_t lo = begin > b->off ? begin : b->off, hi = end < b->off + b->len ? end : b->off + b->len;
        if (lo < hi) b->ready += hi - lo;
    }
    PEP_CALL(progress(x, 0));
    PEP_CALL(post_ready(x, 0, 1));
    x->st.ready_s += MPI_Wtime() - t0;
    return PEP_OK;
}

/* The union of touched rows (bitwise OR over ranks), packed into x->packed as buckets. */
static int post_rows(struct pep_exchange *x)
{
    PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, x->bitmap, (int)x->nwords, MPI_UINT64_T, MPI_BOR, x->comm));
    size_t W = x->o.width, nr = 0, nu = 0;
    for (size_t w = 0; w < x->nwords; w++) nu += (size_t)__builtin_popcountll(x->bitmap[w]);
    if (nu > x->packed_rows) { /* the same union on every rank: all grow here, and agree on it */
        pep_free(x->packed);
        x->packed = pep_alloc_(nu * W * sizeof(float), "exchange rows", __FILE__, __LINE__, __func__);
        x->packed_rows = x->packed ? nu : 0;
        PEP_CALL(pep_mpi_agree(x->packed ? PEP_OK : PEP_ERR_NOMEM, x->comm));
    }
    const float *table = x->buf + x->o.rows_begin;
    for (size_t r = 0; r < x->o.nrows; r++)
        if (x->bitmap[r / 64] >> (r % 64) & 1) memcpy(x->packed + nr++ * W, table + r * W, W * sizeof(float));
    x->st.rows = nr;
    size_t total = nr * W, B = x->o.bucket;
    for (size_t e = total; e > 0;) {
        size_t b = e > B ? e - B : 0;
        struct bucket *k = &x->bk[x->nbk++];
        k->off = b, k->len = e - b, k->packed = 1, k->ready = k->len, k->state = BK_WAITING, k->early = 0;
        k->req = MPI_REQUEST_NULL;
        e = b;
    }
    return PEP_OK;
}

int pep_exchange_finish(struct pep_exchange *x, struct pep_exchange_stats *st)
{
    double t0 = MPI_Wtime();
    size_t dense = x->n;
    if (x->size > 1) {
        PEP_CALL(post_ready(x, 1, 0)); /* the dense buckets the backward did not post */
        if (has_rows(x)) {
            PEP_CALL(post_rows(x));
            PEP_CALL(post_ready(x, 1, 0));
        }
        while (x->inflight > 0) PEP_CALL(progress(x, 1));
        if (has_rows(x)) { /* unpack the summed rows */
            size_t W = x->o.width, nr = 0;
            float *table = x->buf + x->o.rows_begin;
            for (size_t r = 0; r < x->o.nrows; r++)
                if (x->bitmap[r / 64] >> (r % 64) & 1) memcpy(table + r * W, x->packed + nr++ * W, W * sizeof(float));
        }
    }
    if (has_rows(x) && x->size == 1) /* nothing to sum: the rows this rank touched, for the report */
        for (size_t w = 0; w < x->nwords; w++) x->st.rows += (size_t)__builtin_popcountll(x->bitmap[w]);
    if (has_rows(x)) dense -= x->o.nrows * x->o.width;
    x->st.bytes = 4.0 * (double)(dense + x->st.rows * x->o.width) + 8.0 * (double)x->nwords;
    x->st.dense_bytes = 4.0 * (double)x->n;
    for (int k = 0; k < x->nbk; k++) x->st.early += x->bk[k].early;
    x->st.finish_s = MPI_Wtime() - t0;
    if (st) *st = x->st;
    return PEP_OK;
}

void pep_exchange_slice(const struct pep_exchange *x, size_t *lo, size_t *hi)
{
    *lo = x->lo;
    *hi = x->hi;
}

int pep_exchange_allgather(struct pep_exchange *x, const float *mine, float *buf)
{
    if (!x->slo) {
        if (mine && x->hi > x->lo && mine != buf + x->lo) memmove(buf + x->lo, mine, (x->hi - x->lo) * sizeof(float));
        return PEP_OK;
    }
    int P = x->size;
    size_t W = x->o.bucket, longest = 0;
    for (int j = 0; j < P; j++)
        if (x->shi[j] - x->slo[j] > longest) longest = x->shi[j] - x->slo[j];
    /* window w0: at most W floats of every slice, so counts stay below INT_MAX */
    for (size_t w0 = 0; w0 < longest; w0 += W) {
        for (int j = 0; j < P; j++) {
            size_t len = x->shi[j] - x->slo[j], c = len > w0 ? (len - w0 < W ? len - w0 : W) : 0;
            x->gcounts[j] = (int)c;
            x->gdispls[j] = (int)(x->slo[j] + (c ? w0 : 0));
        }
        int mc = x->gcounts[x->rank];
        if (mine)
            PEP_CALL_MPI(MPI_Allgatherv(mc ? mine + w0 : mine, mc, MPI_FLOAT, buf, x->gcounts, x->gdispls, MPI_FLOAT,
                                        x->comm));
        else
            PEP_CALL_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, x->gcounts, x->gdispls, MPI_FLOAT,
                                        x->comm));
    }
    return PEP_OK;
}
