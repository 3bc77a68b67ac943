/* Heartbeat records, their files, the watchdog's bound and its message (heartbeat.h). */
#include "heartbeat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define MAX_NAMED 8

double pep_watchdog_bound(double setting, long steps_done, double slowest_s)
{
    if (setting < 0) return -1.0;
    if (setting > 0) return setting;
    if (steps_done <= 0) return PEP_WATCHDOG_FIRST_S;
    double b = PEP_WATCHDOG_STEPS * slowest_s;
    return b > PEP_WATCHDOG_FLOOR_S ? b : PEP_WATCHDOG_FLOOR_S;
}

double pep_heartbeat_write_every(double bound)
{
    double s = bound / 10.0;
    return s < 0.5 ? 0.5 : s > 10.0 ? 10.0 : s;
}

double pep_heartbeat_stale_after(double bound) { return 3.0 * pep_heartbeat_write_every(bound) + 1.0; }

int pep_heartbeat_path(const char *dir, int rank, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/rank-%d", dir, rank);
    PEP_CHECK(n > 0 && (size_t)n < len, PEP_ERR_USAGE, "the heartbeat path %s/rank-%d is too long", dir, rank);
    return PEP_OK;
}

int pep_heartbeat_write(const char *dir, const struct pep_heartbeat *hb)
{
    char path[1200], tmp[1210];
    PEP_CALL(pep_heartbeat_path(dir, hb->rank, path, sizeof path));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    PEP_CHECK(f, PEP_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int ok = fprintf(f, "rank %d\npid %ld\nhost %s\nunit %s\nstep %ld\nphase %s\nwaiting %d\nbeat %.3f\nalive %.3f\n",
                     hb->rank, hb->pid, hb->host, hb->unit, hb->step, hb->phase, hb->waiting, hb->beat, hb->alive) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        PEP_FAIL(PEP_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return PEP_OK;
}

/* Copies the rest of a line (without its newline) into dst. */
static void copy_value(char *dst, size_t len, const char *v)
{
    size_t n = strcspn(v, "\n");
    if (n >= len) n = len - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int pep_heartbeat_read(const char *dir, int rank, struct pep_heartbeat *hb)
{
    char path[1200], line[512];
    PEP_CALL(pep_heartbeat_path(dir, rank, path, sizeof path));
    memset(hb, 0, sizeof *hb);
    hb->rank = -1;
    FILE *f = fopen(path, "r");
    PEP_CHECK(f, PEP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    unsigned seen = 0; /* one bit per field */
    while (fgets(line, sizeof line, f)) {
        char *v = strchr(line, ' ');
        if (!v) continue;
        *v++ = '\0';
        if (!strcmp(line, "rank")) hb->rank = atoi(v), seen |= 1u;
        else if (!strcmp(line, "pid")) hb->pid = atol(v), seen |= 2u;
        else if (!strcmp(line, "host")) copy_value(hb->host, sizeof hb->host, v), seen |= 4u;
        else if (!strcmp(line, "unit")) copy_value(hb->unit, sizeof hb->unit, v), seen |= 8u;
        else if (!strcmp(line, "step")) hb->step = atol(v), seen |= 16u;
        else if (!strcmp(line, "phase")) copy_value(hb->phase, sizeof hb->phase, v), seen |= 32u;
        else if (!strcmp(line, "beat")) hb->beat = atof(v), seen |= 64u;
        else if (!strcmp(line, "alive")) hb->alive = atof(v), seen |= 128u;
        else if (!strcmp(line, "waiting")) hb->waiting = atoi(v) != 0, seen |= 256u;
    }
    fclose(f);
    PEP_CHECK(seen == 511u && hb->rank == rank, PEP_ERR_FORMAT, "%s is not a complete heartbeat record of rank %d",
              path, rank);
    return PEP_OK;
}

void pep_heartbeat_describe(const struct pep_heartbeat *hb, char *buf, size_t len)
{
    if (hb->step > 0)
        snprintf(buf, len, "%s %ld, %s", hb->unit[0] ? hb->unit : "step", hb->step, hb->phase);
    else
        snprintf(buf, len, "%s", hb->phase);
}

/* Rank r's record as the firing rank sees it (its own from memory), NULL if unreadable. */
static const struct pep_heartbeat *record(const struct pep_watchdog_view *v, int r)
{
    if (r == v->self->rank) return v->self;
    return v->files_read && v->have[r] ? &v->files[r] : NULL;
}

static int running(const struct pep_watchdog_view *v, const struct pep_heartbeat *hb)
{
    return hb == v->self || v->now - hb->alive <= pep_heartbeat_stale_after(v->bound);
}

void pep_watchdog_blame(const struct pep_watchdog_view *v, int *blame, int *nblame)
{
    *nblame = 0;
    if (!v->files_read) {
        blame[(*nblame)++] = v->self->rank;
        return;
    }
    for (int r = 0; r < v->size; r++) {
        const struct pep_heartbeat *hb = record(v, r);
        if (!hb || !running(v, hb)) blame[(*nblame)++] = r;
    }
    if (*nblame > 0) return;
    /* every rank runs: the others wait for the ones outside a collective, or, when all wait,
     * for the ones whose last progress is the oldest */
    int working = 0;
    for (int r = 0; r < v->size; r++) working += !record(v, r)->waiting;
    double oldest = 0;
    int first = 1;
    for (int r = 0; r < v->size; r++) {
        const struct pep_heartbeat *hb = record(v, r);
        if ((working && hb->waiting) || (!first && hb->beat >= oldest)) continue;
        oldest = hb->beat, first = 0;
    }
    for (int r = 0; r < v->size; r++) {
        const struct pep_heartbeat *hb = record(v, r);
        if (!(working && hb->waiting) && hb->beat <= oldest + 1.0) blame[(*nblame)++] = r;
    }
}

int pep_watchdog_defer_to(const struct pep_watchdog_view *v)
{
    if (!v->files_read) return -1;
    for (int r = 0; r < v->self->rank && r < v->size; r++) {
        const struct pep_heartbeat *hb = record(v, r);
        if (hb && running(v, hb) && v->now - hb->beat >= 0.5 * v->bound) return r;
    }
    return -1;
}

/* Appends printf-style text to buf[*used..len), never past its end. */
static void put(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    if (*used >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

void pep_watchdog_message(const struct pep_watchdog_view *v, char *buf, size_t len)
{
    int nblame = 0, self = v->self->rank;
    size_t used = 0;
    char where[2 * PEP_HEARTBEAT_TEXT_MAX];
    buf[0] = '\0';
    /* plain malloc: this runs on the watchdog's thread, where nothing may record an error */
    int *blame = malloc(sizeof *blame * (size_t)(v->size > 0 ? v->size : 1));
    if (blame) pep_watchdog_blame(v, blame, &nblame);
    int self_blamed = 0;
    for (int i = 0; i < nblame && i < MAX_NAMED; i++) {
        int r = blame[i];
        const struct pep_heartbeat *hb = record(v, r);
        put(buf, len, &used, "%s", i ? "; " : "");
        if (!hb) {
            put(buf, len, &used, "rank %d left no readable heartbeat (%s/rank-%d): it never got this far, or its "
                                 "file system does not answer", r, v->dir, r);
            continue;
        }
        pep_heartbeat_describe(hb, where, sizeof where);
        if (!running(v, hb)) {
            /* its file is as old as its last write: the step it shows may lag by one write interval */
            put(buf, len, &used, "rank %d (pid %ld on %s) has not run for %.1f s (stopped, e.g. by SIGSTOP, hung in "
                                 "the kernel, or its node is gone); its last heartbeat, written every %.1f s: %s, %.1f s "
                                 "ago", r, hb->pid, hb->host, v->now - hb->alive, pep_heartbeat_write_every(v->bound),
                where, v->now - hb->beat);
            continue;
        }
        self_blamed |= r == self;
        put(buf, len, &used, "rank %d (%spid %ld on %s) made no progress for %.1f s, at %s", r,
            r == self ? "this rank, " : "", hb->pid, hb->host, v->now - hb->beat, where);
        if (v->size == 1)
            put(buf, len, &used, " (its main thread is stuck: a hung file system, a deadlock)");
        else if (hb->waiting)
            put(buf, len, &used, " (it still runs, waiting in a collective like the others: a deadlock, or a "
                                 "collective that does not complete)");
        else
            put(buf, len, &used, " (it still runs, but its main thread is stuck outside any collective, e.g. on a "
                                 "hung file system, and the others wait for it)");
    }
    if (nblame > MAX_NAMED) put(buf, len, &used, "; and %d more rank%s", nblame - MAX_NAMED, nblame - MAX_NAMED > 1 ? "s" : "");
    if (!v->files_read)
        put(buf, len, &used, " (the other ranks' heartbeat files in %s could not be read in time: is that file "
                             "system hung?)", v->dir);
    if (!self_blamed) {
        pep_heartbeat_describe(v->self, where, sizeof where);
        put(buf, len, &used, "; this rank (%d) has %s %.1f s at %s", self,
            v->self->waiting ? "waited for it" : "made no progress for", v->now - v->self->beat, where);
    }
    if (v->setting > 0)
        put(buf, len, &used, "; no progress for longer than run.watchdog_s = %g s", v->bound);
    else
        put(buf, len, &used, "; no progress for longer than the watchdog's bound of %.0f s (run.watchdog_s = 0, "
                             "auto: %.0f s until the first step ends, then max(%.0f s, %.0f x the slowest step))",
            v->bound, PEP_WATCHDOG_FIRST_S, PEP_WATCHDOG_FLOOR_S, PEP_WATCHDOG_STEPS);
    put(buf, len, &used, ": ending the job (MPI_Abort, exit status %d); the checkpoints written so far are intact, "
                         "resume with --resume auto", v->exit_code);
    free(blame);
}
