/* The progress watchdog: a rank that stops making progress without dying (SIGSTOP, a hung file
 * system, a deadlock) would otherwise hang the whole job until its allocation ends. Each rank
 * runs one watchdog; the stage loops feed it heartbeats (pep_heartbeat: the step and the phase,
 * "task 3 of 4", "meta-gradient exchange", "writing checkpoint", ...). When a rank's own
 * progress has stalled longer than the bound (run.watchdog_s; 0 = auto, pep_watchdog_bound in
 * heartbeat.h) — because it waits in a collective for a stopped rank, or is stuck itself — it
 * reads every rank's heartbeat file (<out>/.heartbeat/rank-<r>), prints one message naming the
 * ranks that made no progress, for how long, at which step and phase, and ends the job with
 * MPI_Abort(MPI_COMM_WORLD, PEP_EXIT_HUNG).
 *
 * Two threads per rank, both with every signal blocked (SIGTERM / SIGUSR1 stay the main
 * thread's): a timer that never touches a file (it checks the bound every tick, at most 1 s),
 * and a writer that rewrites this rank's heartbeat file every pep_heartbeat_write_every(bound)
 * seconds (tmp + rename) and reads the others' when the timer fires. On a hung file system the
 * writer may block; the timer then still fires, waits at most 5 s for the files and says it
 * could not read them. A pause of the whole process (SIGSTOP and SIGCONT of every rank, as
 * Slurm's suspend does, or a machine too loaded to run the timer) restarts the wait instead
 * of firing on resumption. When several ranks fire, a rank defers for a moment to a lower
 * running rank that is stalled as well, so usually one message is printed.
 *
 * Threads and MPI: peprime initialises MPI with MPI_THREAD_FUNNELED (pep_mpi_init), under which
 * only the main thread should call MPI. The watchdog calls MPI_Abort from its timer thread while
 * the main thread may be blocked inside MPI: outside that level's promise, but Open MPI 4.1 ends
 * the job from there (mpiexec kills every rank, a stopped one included, and returns the code:
 * tests/pipeline/faults_hang.sh). Should MPI_Abort return, the thread _exit()s with the same
 * status, which mpiexec and srun --kill-on-bad-exit also turn into the end of the job. */
#ifndef PEP_WATCHDOG_H
#define PEP_WATCHDOG_H

#include "heartbeat.h"

/* The exit status of a job the watchdog ended (beside 75, stopped on a signal after a checkpoint). */
#define PEP_EXIT_HUNG 76

struct pep_watchdog_opts {
    double setting;     /* run.watchdog_s: > 0 that many seconds, 0 auto, < 0 off */
    const char *dir;    /* the heartbeat folder (<out>/.heartbeat), created if missing */
    const char *unit;   /* what a step is called in messages: "step", "meta-step", "task" */
    int rank, size;     /* in MPI_COMM_WORLD */
    /* Tests: called on the timer thread with the message instead of printing it and ending the
     * job; the watchdog then stops checking. NULL: print on stderr, MPI_Abort. */
    void (*fire)(const char *msg, void *ud);
    void *ud;
};

struct pep_watchdog;

/* Local. Starts the watchdog threads and makes this the process's watchdog, the one
 * pep_heartbeat feeds (at most one at a time: PEP_ERR_INTERNAL otherwise). A setting < 0 starts
 * nothing (*out = NULL, PEP_OK). A heartbeat folder that cannot be created is a warning, not an
 * error: the timer still runs, the message then names no other rank. */
int pep_watchdog_create(const struct pep_watchdog_opts *o, struct pep_watchdog **out);
/* Local. Stops the threads (waiting at most 5 s for a writer blocked on a hung file system,
 * which is then left behind) and sets *w = NULL. NULL-safe. Call before MPI_Finalize. */
void pep_watchdog_destroy(struct pep_watchdog **w);

/* Local. The bound in force now, seconds (auto: from the step times measured so far). */
double pep_watchdog_current_bound(struct pep_watchdog *w);

/* Local, main thread. Progress: the process's watchdog restarts its wait and records `step`
 * (the 1-based step being worked on; < 0 keeps the current one) and the phase (printf-style;
 * clears the detail). A no-op when no watchdog runs. Cheap (a lock and a snprintf): call it
 * per task, per evaluation batch. A step number above the last one ends the last step: its
 * duration feeds the auto bound. */
void pep_heartbeat(long step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Local, main thread. Like pep_heartbeat, for a phase that is a collective (an allreduce, the
 * exchange, an agreement): there the rank waits for the others, so when every rank has stalled
 * the message blames the ones outside a collective. */
void pep_heartbeat_wait(long step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Local, main thread. Progress inside the current phase ("en/dev batch 3 of 12"), shown after
 * the phase; restarts the wait like pep_heartbeat. */
void pep_heartbeat_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
