/* The progress watchdog: heartbeats, the timer and writer threads, the end of a hung job
 * (watchdog.h). */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "watchdog.h"

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"

#define DIR_MAX 1100
#define MSG_MAX 16384
/* How long the firing timer waits for the writer to read the heartbeat files, and how long
 * destroy waits for a writer that may be blocked on a hung file system. */
#define READ_WAIT_S 5.0
#define JOIN_WAIT_S 5.0
/* A tick this much later than due means the whole process did not run (stopped, suspended,
 * starved): the wait restarts instead of counting that time as no progress. */
#define PAUSE_S 5.0

struct pep_watchdog {
    struct pep_watchdog_opts o;
    char dir[DIR_MAX];
    int have_dir;                 /* the heartbeat folder exists */
    pthread_mutex_t mu;
    pthread_cond_t wake_timer, wake_writer, report_done; /* on CLOCK_MONOTONIC */
    pthread_t timer, writer;
    int timer_up, writer_up;
    /* guarded by mu */
    struct pep_heartbeat hb;      /* phase and step as of the last heartbeat; beat in wall-clock seconds */
    char phase[PEP_HEARTBEAT_TEXT_MAX], detail[PEP_HEARTBEAT_TEXT_MAX];
    double beat_mono;             /* pep_now_s() of the last heartbeat */
    double step_t0;               /* pep_now_s() of the first heartbeat of the current step */
    long steps_done;              /* steps whose duration was measured */
    double slowest;               /* the longest of them, seconds */
    int stop;
    int report_wanted, report_ready;
    struct pep_heartbeat *files;  /* the report: every rank's record as read */
    int *have;
    int write_failed;             /* a write failed: warned once */
};

/* The process's watchdog, the one pep_heartbeat feeds; set and cleared on the main thread. */
static struct pep_watchdog *current;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The monotonic deadline `s` seconds from now, for pthread_cond_timedwait. */
static struct timespec deadline(double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = (double)(long)s;
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((s - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

static double bound_locked(const struct pep_watchdog *w)
{
    return pep_watchdog_bound(w->o.setting, w->steps_done, w->slowest);
}

double pep_watchdog_current_bound(struct pep_watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    double b = bound_locked(w);
    pthread_mutex_unlock(&w->mu);
    return b;
}

/* This rank's record as of now (phase and detail joined), under mu. */
static void snapshot_locked(const struct pep_watchdog *w, struct pep_heartbeat *hb)
{
    *hb = w->hb;
    if (w->detail[0])
        snprintf(hb->phase, sizeof hb->phase, "%.80s: %.40s", w->phase, w->detail);
    else
        snprintf(hb->phase, sizeof hb->phase, "%s", w->phase);
    hb->alive = wall_s();
}

/* Writer thread: this rank's file every pep_heartbeat_write_every(bound) seconds; the other
 * ranks' files when the timer asks. */
static void *writer_main(void *arg)
{
    struct pep_watchdog *w = arg;
    double next = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        if (w->report_wanted && !w->report_ready) {
            pthread_mutex_unlock(&w->mu);
            for (int r = 0; r < w->o.size; r++)
                w->have[r] = w->have_dir && pep_heartbeat_read(w->dir, r, &w->files[r]) == PEP_OK;
            pep_error_clear(); /* this thread's record of the unreadable ones */
            pthread_mutex_lock(&w->mu);
            w->report_ready = 1;
            pthread_cond_broadcast(&w->report_done);
            continue;
        }
        double now = pep_now_s();
        if (now >= next && w->have_dir) {
            struct pep_heartbeat hb;
            snapshot_locked(w, &hb);
            next = now + pep_heartbeat_write_every(bound_locked(w));
            pthread_mutex_unlock(&w->mu);
            int rc = pep_heartbeat_write(w->dir, &hb);
            if (rc != PEP_OK && !w->write_failed) {
                w->write_failed = 1;
                fprintf(stderr, "[rank %d] warning: watchdog: %s; the watchdog still ends a hung job, but cannot "
                        "name this rank's step from another rank\n", w->o.rank, pep_error_message());
                fflush(stderr);
            }
            pep_error_clear();
            pthread_mutex_lock(&w->mu);
            continue;
        }
        struct timespec until = deadline(w->have_dir ? next - now : 3600.0);
        pthread_cond_timedwait(&w->wake_writer, &w->mu, &until);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Timer thread, once the bound has passed: the report, the message, the end of the job. */
static void fire(struct pep_watchdog *w)
{
    struct pep_heartbeat self;
    pthread_mutex_lock(&w->mu);
    snapshot_locked(w, &self);
    double bound = bound_locked(w);
    w->report_wanted = 1;
    pthread_cond_broadcast(&w->wake_writer);
    struct timespec until = deadline(READ_WAIT_S);
    while (!w->report_ready && !w->stop)
        if (pthread_cond_timedwait(&w->report_done, &w->mu, &until) == ETIMEDOUT) break;
    int files_read = w->report_ready;
    pthread_mutex_unlock(&w->mu);
    struct pep_watchdog_view v = {.self = &self, .files = w->files, .have = w->have, .size = w->o.size,
                                  .now = wall_s(), .bound = bound, .setting = w->o.setting,
                                  .exit_code = PEP_EXIT_HUNG, .files_read = files_read, .dir = w->dir};
    /* the ranks waiting for the same stalled one fire together: the lowest speaks for them */
    if (pep_watchdog_defer_to(&v) >= 0 && !w->o.fire) {
        double grace = 0.5 * bound < 10.0 ? 0.5 * bound : 10.0;
        struct timespec ts = {(time_t)grace, (long)((grace - (double)(long)grace) * 1e9)};
        nanosleep(&ts, NULL);
        v.now = wall_s();
    }
    char *msg = malloc(MSG_MAX);
    if (msg) pep_watchdog_message(&v, msg, MSG_MAX);
    if (w->o.fire) {
        w->o.fire(msg ? msg : "(out of memory for the message)", w->o.ud);
        free(msg);
        return;
    }
    if (w->o.size > 1) fprintf(stderr, "[rank %d] ", w->o.rank);
    fprintf(stderr, "peprime: watchdog: %s\n", msg ? msg : "no progress beyond the bound: ending the job");
    fflush(stderr);
    fflush(stdout);
    /* outside MPI_THREAD_FUNNELED's promise, but Open MPI 4.1 ends the job from here (watchdog.h) */
    MPI_Abort(MPI_COMM_WORLD, PEP_EXIT_HUNG);
    _exit(PEP_EXIT_HUNG);
}

static void *timer_main(void *arg)
{
    struct pep_watchdog *w = arg;
    double last = pep_now_s();
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double bound = bound_locked(w), tick = bound / 20.0;
        if (tick > 1.0) tick = 1.0;
        if (tick < 0.05) tick = 0.05;
        struct timespec until = deadline(tick);
        pthread_cond_timedwait(&w->wake_timer, &w->mu, &until);
        if (w->stop) break;
        double now = pep_now_s();
        if (now - last > tick + PAUSE_S) w->beat_mono = now; /* the process itself did not run */
        last = now;
        if (now - w->beat_mono < bound_locked(w)) continue;
        pthread_mutex_unlock(&w->mu);
        fire(w);
        return NULL; /* a test's fire hook returned: stop checking */
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void set_text(char *dst, size_t len, const char *fmt, va_list ap)
{
    vsnprintf(dst, len, fmt, ap);
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' '; /* one line in the file */
}

static void beat(long step, int waiting, const char *fmt, va_list ap)
{
    struct pep_watchdog *w = current;
    double now = pep_now_s(), wall = wall_s();
    pthread_mutex_lock(&w->mu);
    if (step > w->hb.step) {
        /* a new step: the previous one ended now */
        if (w->hb.step > 0) {
            double d = now - w->step_t0;
            if (d > w->slowest) w->slowest = d;
            w->steps_done++;
        }
        w->step_t0 = now;
    }
    if (step >= 0) w->hb.step = step;
    set_text(w->phase, sizeof w->phase, fmt, ap);
    w->hb.waiting = waiting;
    w->detail[0] = '\0';
    w->beat_mono = now;
    w->hb.beat = wall;
    pthread_mutex_unlock(&w->mu);
}

void pep_heartbeat(long step, const char *fmt, ...)
{
    if (!current) return;
    va_list ap;
    va_start(ap, fmt);
    beat(step, 0, fmt, ap);
    va_end(ap);
}

void pep_heartbeat_wait(long step, const char *fmt, ...)
{
    if (!current) return;
    va_list ap;
    va_start(ap, fmt);
    beat(step, 1, fmt, ap);
    va_end(ap);
}

void pep_heartbeat_detail(const char *fmt, ...)
{
    struct pep_watchdog *w = current;
    if (!w) return;
    double now = pep_now_s(), wall = wall_s();
    pthread_mutex_lock(&w->mu);
    va_list ap;
    va_start(ap, fmt);
    set_text(w->detail, sizeof w->detail, fmt, ap);
    va_end(ap);
    w->beat_mono = now;
    w->hb.beat = wall;
    pthread_mutex_unlock(&w->mu);
}

/* Starts a thread with every signal blocked, so signals keep going to the main thread. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    PEP_CHECK(e == 0, PEP_ERR_INTERNAL, "cannot start the watchdog thread: %s", strerror(e));
    return PEP_OK;
}

int pep_watchdog_create(const struct pep_watchdog_opts *o, struct pep_watchdog **out)
{
    *out = NULL;
    if (o->setting < 0) return PEP_OK;
    PEP_CHECK(!current, PEP_ERR_INTERNAL, "a watchdog already runs in this process");
    PEP_CHECK(o->size >= 1 && o->rank >= 0 && o->rank < o->size, PEP_ERR_USAGE, "watchdog: rank %d of %d", o->rank,
              o->size);
    struct pep_watchdog *w = calloc(1, sizeof *w);
    PEP_CHECK(w, PEP_ERR_NOMEM, "out of memory for the watchdog");
    w->o = *o;
    w->files = calloc((size_t)o->size, sizeof *w->files);
    w->have = calloc((size_t)o->size, sizeof *w->have);
    if (!w->files || !w->have) {
        free(w->files), free(w->have), free(w);
        PEP_FAIL(PEP_ERR_NOMEM, "out of memory for the watchdog's view of %d ranks", o->size);
    }
    snprintf(w->dir, sizeof w->dir, "%s", o->dir);
    w->have_dir = mkdir(w->dir, 0755) == 0 || errno == EEXIST;
    if (!w->have_dir)
        pep_warn("watchdog: cannot create the heartbeat folder %s: %s; a hung job is still ended, but the message "
                 "cannot name the other ranks' steps", w->dir, strerror(errno));
    w->o.dir = w->dir;
    w->hb.rank = o->rank;
    w->hb.pid = (long)getpid();
    if (gethostname(w->hb.host, sizeof w->hb.host) != 0) snprintf(w->hb.host, sizeof w->hb.host, "?");
    w->hb.host[sizeof w->hb.host - 1] = '\0';
    snprintf(w->hb.unit, sizeof w->hb.unit, "%s", o->unit ? o->unit : "step");
    snprintf(w->phase, sizeof w->phase, "starting");
    w->beat_mono = pep_now_s();
    w->hb.beat = wall_s();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake_timer, &ca);
    pthread_cond_init(&w->wake_writer, &ca);
    pthread_cond_init(&w->report_done, &ca);
    pthread_condattr_destroy(&ca);
    int rc = start_thread(&w->writer, writer_main, w);
    if (rc == PEP_OK) w->writer_up = 1, rc = start_thread(&w->timer, timer_main, w);
    if (rc == PEP_OK) w->timer_up = 1;
    current = w;
    if (rc != PEP_OK) pep_watchdog_destroy(&w);
    *out = w;
    return rc;
}

void pep_watchdog_destroy(struct pep_watchdog **wp)
{
    struct pep_watchdog *w = wp ? *wp : NULL;
    if (!w) return;
    if (current == w) current = NULL;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->wake_timer);
    pthread_cond_broadcast(&w->wake_writer);
    pthread_cond_broadcast(&w->report_done);
    pthread_mutex_unlock(&w->mu);
    if (w->timer_up) pthread_join(w->timer, NULL);
    int left_behind = 0;
    if (w->writer_up) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until); /* pthread_timedjoin_np takes the realtime clock */
        until.tv_sec += (time_t)JOIN_WAIT_S;
        if (pthread_timedjoin_np(w->writer, NULL, &until) != 0) {
            /* blocked in a file operation: it still holds w, which is left to it */
            pthread_detach(w->writer);
            left_behind = 1;
        }
    }
    if (!left_behind) {
        pthread_cond_destroy(&w->wake_timer);
        pthread_cond_destroy(&w->wake_writer);
        pthread_cond_destroy(&w->report_done);
        pthread_mutex_destroy(&w->mu);
        free(w->files);
        free(w->have);
        free(w);
    }
    *wp = NULL;
}
