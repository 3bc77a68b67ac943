/* Stage helpers shared by pretrain / prime / finetune / evaluate: MPI + placement start-up,
 * model creation from the config, loading a checkpoint's groups into a model, and writing
 * a checkpoint (atomically, collectively) with the model, optimizer, tasks, best-so-far
 * weights and log. */
#ifndef PEP_STAGE_H
#define PEP_STAGE_H

#include <mpi.h>

#include "checkpoint.h"
#include "model/model.h"
#include "optim/optim.h"
#include "pep_mpi.h"
#include "run.h"
#include "watchdog.h"

/* A growable float64 series for /log. */
#define PEP_SERIES_NAME_MAX 32
struct pep_series {
    char name[PEP_SERIES_NAME_MAX];
    double *v;
    size_t n, cap;
};
int pep_series_push(struct pep_series *s, double x);
/* One value onto each of s[0..n): a step's row of the log. */
int pep_series_push_row(struct pep_series *s, int n, const double *x);
void pep_series_free(struct pep_series *s);

struct pep_stage {
    struct pep_run run;
    struct pep_mpi_ctx mpi;
    int mpi_up;
    struct pep_watchdog *watchdog; /* run.watchdog_s (NULL when off) */
};

/* MPI_Init, option parsing, placement (cores, BLAS threads), the BLAS kernel check, the
 * resolved config print and the progress watchdog (run.watchdog_s; heartbeats in
 * <out>/.heartbeat). Collective. */
int pep_stage_begin(struct pep_stage *st, const char *stage, int argc, char **argv);
/* Agrees on `rc` across ranks, stops the watchdog, finalizes MPI, prints the error once and maps the status to
 * an exit code (0 ok, 2 usage, 75 preempted after a checkpoint, 1 otherwise). */
int pep_stage_end(struct pep_stage *st, int rc);

/* Loads `groups` of the model from a checkpoint file; shape mismatches name the dataset. */
int pep_stage_load(const char *path, struct pep_model *m, unsigned groups, struct pep_ckpt_info *info_out);

/* The best-so-far weights of a model selection (finetune: the PE + head of the best dev F1),
 * written to a checkpoint's /best so that a resumed run selects among all its evaluations,
 * not only those after the resume. */
struct pep_stage_best {
    float *w;        /* the floats of the `groups` range [begin, end) of the parameter table */
    unsigned groups; /* a contiguous group set */
    double f1;       /* their dev F1 (a fraction); -1: not evaluated yet (w holds the start weights) */
    long step;       /* the step after which they scored f1; 0 for the start weights */
};

struct pep_stage_save {
    const char *stage;
    long step;
    const struct pep_run *run;
    const struct pep_model *m;
    unsigned groups;                  /* parameter groups to write */
    const struct pep_optim *opt;      /* NULL: no optimizer state */
    unsigned opt_groups;
    const struct pep_ckpt_task *tasks;
    int ntasks;
    unsigned task_groups;
    const struct pep_stage_best *best; /* NULL: no /best */
    struct pep_series *series;
    int nseries;
    uint64_t rng[4];
    double last_save_s;   /* pep_now_s() of the last checkpoint (0: none yet, the clock starts at the first step) */
    int lead_warned;      /* the signal-lead warning was printed */
};
/* After step `done` (1-based) of a training loop: agrees across ranks whether a stop signal
 * arrived on any of them; checkpoints `s` (its step and rng[1] set to `done`) when
 * checkpoint.every or checkpoint.every_minutes (any rank's clock) says so or on a stop, and
 * warns (rank 0, once) when a checkpoint takes, or is estimated before the first one to take,
 * more than half of the time between Slurm's warning signal and the kill (PEP_SIGNAL_LEAD_S); on a stop returns PEP_ERR_INTERRUPTED ("stopped at
 * <unit> N on a signal"), which pep_stage_end turns into exit status 75. Collective. */
int pep_stage_step_done(MPI_Comm comm, struct pep_stage_save *s, long done, const char *unit);
/* Writes `path` collectively over comm (tmp + fsync + rename). */
int pep_stage_save(MPI_Comm comm, const char *path, const struct pep_stage_save *s);
/* Checkpoint `step` into <out>/checkpoints and rotate (checkpoint.keep). Collective. */
int pep_stage_checkpoint(MPI_Comm comm, const struct pep_stage_save *s);
/* The end of a stage: the last checkpoint into <out>/checkpoints, then the same file linked
 * (atomically) to `final_path`, e.g. <out>/primed.h5. Collective. */
int pep_stage_final(MPI_Comm comm, const char *final_path, const struct pep_stage_save *s);
/* --resume: finds the checkpoint to continue from (auto: the newest in <out>/checkpoints that
 * opens and whose every tensor matches its checksum, damaged newer ones skipped with a
 * warning; none; or a path). *found = 0 when starting fresh. Not collective (every rank
 * looks for itself). */
int pep_stage_resume_path(const struct pep_run *run, const char *stage, char *path, size_t len, int *found);
/* Restores a stage from checkpoint `path`: the parameters of `groups`, the optimizer's
 * moments and step count (its own range), the completed step (*start) and the /log series.
 * Not collective: every rank reads the file; agree on the result afterwards. */
int pep_stage_resume_state(const char *path, struct pep_model *m, unsigned groups, struct pep_optim *opt,
                           struct pep_series *series, int nseries, long *start);
/* Restores best->w, best->f1 and best->step (best->groups set by the caller) from the /best of
 * checkpoint `path`. *found = 0 when the file has none (written before /best existed): best
 * is left untouched. Not collective: every rank reads the file; agree on the result
 * afterwards. */
int pep_stage_resume_best(const char *path, const struct pep_model *m, struct pep_stage_best *best, int *found);
/* Reads the series back from a checkpoint's /log. series[0] must be there; a later series
 * missing from an older checkpoint gets NaN for each of series[0]'s steps. */
int pep_stage_load_series(const char *path, struct pep_series *series, int nseries);

#endif
