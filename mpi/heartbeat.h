/* Heartbeat records of the progress watchdog (watchdog.h): what one rank was last doing, the
 * small text file each rank keeps of it in <out>/.heartbeat/rank-<r>, the rule that turns
 * run.watchdog_s and the measured step times into a bound, and the message that names the
 * ranks that made no progress. Pure functions of their arguments (no threads, no MPI), so the
 * tests run them in one process on hand-made records.
 *
 * The file, one "key value" per line, written through rank-<r>.tmp + rename:
 *   rank 1
 *   pid 4242
 *   host node17
 *   unit meta-step
 *   step 31
 *   phase task 1 of 4 (language bb)
 *   waiting 0              1: the phase is a collective, where the rank waits for the others
 *   beat 1764712345.678    wall clock (epoch seconds) of the rank's last heartbeat
 *   alive 1764712349.012   wall clock of this write: the rank's watchdog still runs
 * A rank whose `alive` is old does not run at all (stopped, hung in the kernel, or gone); one
 * whose `alive` is fresh but `beat` old is alive but stuck (waiting in a collective, a
 * deadlock, a hung file system under its main thread only); among those, one that is not
 * waiting in a collective is the one the others wait for. */
#ifndef PEP_HEARTBEAT_H
#define PEP_HEARTBEAT_H

#include <stddef.h>

#define PEP_HEARTBEAT_TEXT_MAX 128
#define PEP_HEARTBEAT_HOST_MAX 64
#define PEP_HEARTBEAT_UNIT_MAX 16

/* The bound before the first step has finished (data loading, model set-up, the first
 * checkpoint and evaluation), and afterwards its floor and its multiple of the slowest step. */
#define PEP_WATCHDOG_FIRST_S 1800.0
#define PEP_WATCHDOG_FLOOR_S 600.0
#define PEP_WATCHDOG_STEPS 50.0

struct pep_heartbeat {
    int rank;
    long pid;
    char host[PEP_HEARTBEAT_HOST_MAX];
    char unit[PEP_HEARTBEAT_UNIT_MAX];   /* what a step is called: "step", "meta-step", "task" */
    long step;                           /* the step being worked on (1-based); 0 outside the step loop */
    char phase[PEP_HEARTBEAT_TEXT_MAX];  /* "task 1 of 4 (language bb)", "writing checkpoint", ... */
    int waiting;                         /* the phase is a collective: the rank waits for the others */
    double beat;                         /* wall clock (epoch s) of the last heartbeat */
    double alive;                        /* wall clock of the last write of the file */
};

/* Local, pure. The watchdog's bound in seconds: `setting` (run.watchdog_s) when > 0; for 0
 * (auto) PEP_WATCHDOG_FIRST_S until `steps_done` > 0, then max(PEP_WATCHDOG_FLOOR_S,
 * PEP_WATCHDOG_STEPS x slowest_s); -1 for a negative setting (off). */
double pep_watchdog_bound(double setting, long steps_done, double slowest_s);
/* Local, pure. How often a rank rewrites its heartbeat file for a bound (bound / 10 within
 * 0.5 .. 10 s), and the age of `alive` past which a rank counts as not running: 3 writes
 * missed and 1 s of clock skew. */
double pep_heartbeat_write_every(double bound);
double pep_heartbeat_stale_after(double bound);

/* Local. "<dir>/rank-<r>" into buf; PEP_ERR_USAGE if it does not fit. */
int pep_heartbeat_path(const char *dir, int rank, char *buf, size_t len);
/* Local. Writes hb to <dir>/rank-<hb->rank> through a .tmp file and rename (a reader never
 * sees half a record). PEP_ERR_IO with errno's text on failure. Not for the hot path: the
 * watchdog's own thread calls it. */
int pep_heartbeat_write(const char *dir, const struct pep_heartbeat *hb);
/* Local. Reads rank's record; PEP_ERR_IO if the file is missing or unreadable, PEP_ERR_FORMAT
 * if it lacks a field or names another rank. */
int pep_heartbeat_read(const char *dir, int rank, struct pep_heartbeat *hb);

/* "meta-step 31, task 1 of 4 (language bb)" (or only the phase outside the step loop). */
void pep_heartbeat_describe(const struct pep_heartbeat *hb, char *buf, size_t len);

/* What the firing rank knows when its bound has passed: its own record (self, fresh from
 * memory), the records of all `size` ranks as read (have[r] = 0 where rank r's file could not
 * be read; files[self] is ignored), the wall clock now and the bound. */
struct pep_watchdog_view {
    const struct pep_heartbeat *self;
    const struct pep_heartbeat *files;
    const int *have;
    int size;
    double now;
    double bound;
    double setting;     /* run.watchdog_s as given (0 = auto): named in the message */
    int exit_code;      /* the status the job ends with */
    int files_read;     /* 0: the heartbeat files could not be read in time (then files/have unused) */
    const char *dir;    /* the heartbeat folder, for the message */
};

/* Local, pure. The ranks to blame, into blame[0..*nblame) (ascending): every rank without a
 * readable record or whose `alive` is older than pep_heartbeat_stale_after (it does not run);
 * when there is none, the running ranks (self included) that are not waiting in a collective
 * (all of them if every one waits) and whose last heartbeat is the oldest of those (within
 * 1 s): the ones the others wait for. Without files: self only. */
void pep_watchdog_blame(const struct pep_watchdog_view *v, int *blame, int *nblame);
/* Local, pure. The lowest rank below self that still runs and has itself made no progress for
 * half the bound or more: it is firing too, and one message is enough, so self waits a moment
 * for it to end the job. -1 when there is none (or no files). */
int pep_watchdog_defer_to(const struct pep_watchdog_view *v);
/* Local, pure. The one message the firing rank prints (without a trailing newline): which
 * ranks made no progress for how long, at which step and phase, whether they still run, this
 * rank's own wait, the bound, and that the job is being ended with the exit status. At most 8
 * ranks are named ("and N more"). */
void pep_watchdog_message(const struct pep_watchdog_view *v, char *buf, size_t len);

#endif
