/* Stage helpers shared by pretrain / prime / finetune / evaluate: MPI + placement start-up,
 * model creation from the config, reading input checkpoints once per job (rank 0 reads,
 * every rank gets the tensors by broadcast: stage_input.c), and writing a checkpoint
 * (atomically, collectively) with the model, optimizer, tasks, best-so-far weights and log. */
#ifndef PEP_STAGE_H
#define PEP_STAGE_H

#include <mpi.h>

#include "checkpoint.h"
#include "logcsv.h"
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

/* <out>/log.csv (io/logcsv.h): the stage's /log series as CSV, one row per step, written by
 * rank 0 as the rows are logged. Columns: step, loss (prime: its meta_loss), lr, tokens_per_s,
 * grad_norm, elapsed_s (the wall_time series), tokens, then the stage's other series under
 * their own names (finetune: dev_f1; prime: support_loss). */
struct pep_stage_csv {
    struct pep_logcsv lc;
    int col[PEP_LOGCSV_COLS_MAX]; /* the series index of each column */
    int ncols;
};
/* Rank 0: opens the file for the series (their rows so far are those of the checkpoint the
 * stage resumed from; start is its step, 0 for a fresh start; see pep_logcsv_open); other
 * ranks: nothing. Not collective: agree on the result. */
int pep_stage_csv_open(struct pep_stage_csv *c, const struct pep_run *run, const struct pep_series *series,
                       int nseries, long start);
/* Rank 0: appends the series' last row. A failed write is a warning, once, and ends the file
 * (the checkpoints' /log still get every row): training goes on. */
void pep_stage_csv_row(struct pep_stage_csv *c, const struct pep_series *series);
void pep_stage_csv_close(struct pep_stage_csv *c);

struct pep_stage {
    struct pep_run run;
    struct pep_mpi_ctx mpi;
    int mpi_up;
    struct pep_watchdog *watchdog; /* run.watchdog_s (NULL when off) */
    int threads; /* the rank's threads (placement): OpenBLAS's, and the outer step's (pep_optim.threads) */
};

/* MPI_Init, option parsing, placement (cores, BLAS threads), the BLAS kernel check, the
 * resolved config print and the progress watchdog (run.watchdog_s; heartbeats in
 * <out>/.heartbeat). Collective. */
int pep_stage_begin(struct pep_stage *st, const char *stage, int argc, char **argv);
/* Agrees on `rc` across ranks, stops the watchdog, finalizes MPI, prints the error once and maps the status to
 * an exit code (0 ok, 2 usage, 75 preempted after a checkpoint, 1 otherwise). */
int pep_stage_end(struct pep_stage *st, int rc);

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
    /* a sharded optimizer (its moments cover its slice [lo, hi) only): opt_gather(slice, full, ud)
     * brings every rank's slice of a moment into full[begin, end) (indexed like params) on every
     * rank, collectively; opt_scratch is such a block, free while a checkpoint is written */
    int (*opt_gather)(const float *slice, float *full, void *ud);
    void *opt_gather_ud;
    float *opt_scratch;
    const struct pep_ckpt_task *tasks;
    int ntasks;
    unsigned task_groups;
    const struct pep_stage_best *best; /* NULL: no /best */
    struct pep_series *series;
    int nseries;
    uint64_t rng[4];
    const char *base_path;   /* groups without plm: the checkpoint holding the encoder (root attr base_path) ... */
    const char *base_sha256; /* ... and its SHA-256 */
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
/* ---- input checkpoints, read once per job (stage_input.c) ----
 * Rank 0 loads the file (pep_ckpt_load: one read of its bytes, the digest checked on the way)
 * and keeps it open; each read below is collective over in->comm: rank 0 reads from its copy,
 * every rank agrees on rank 0's status (pep_mpi_agree: a bad file stops every rank with rank
 * 0's message, its status returned everywhere) and the result is broadcast bit for bit. The
 * other ranks never open the file. */
#define PEP_STAGE_SERIES_MAX 32
struct pep_stage_input {
    MPI_Comm comm;
    int rank;                    /* in comm */
    struct pep_ckpt_reader *r;   /* rank 0's open file; NULL on the other ranks */
    char path[PEP_RUN_PATH_MAX]; /* the file (every rank) */
    int64_t step;                /* its step attribute (every rank) */
};
/* Opens `path` on rank 0. Collective. */
int pep_stage_input_open(MPI_Comm comm, const char *path, struct pep_stage_input *in);
/* --resume: the checkpoint to continue from, opened on rank 0: auto: the newest in
 * <out>/checkpoints that loads and whose every tensor matches its checksum (rank 0 reads each
 * candidate once; damaged newer ones are skipped with a warning from rank 0); a path: that file;
 * none: nothing. *found = 0 when starting fresh. Collective. */
int pep_stage_input_resume(MPI_Comm comm, const struct pep_run *run, const char *stage, struct pep_stage_input *in,
                           int *found);
/* Closes rank 0's file (local; safe on any rank, also after a failed open). */
void pep_stage_input_close(struct pep_stage_input *in);
/* The file's model shape against m's: the first mismatch is PEP_ERR_USAGE naming both (a file
 * without shape attributes passes). Collective. */
int pep_stage_input_check_model(struct pep_stage_input *in, const struct pep_model *m);
/* pep_ckpt_check_spec on rank 0's file. Collective. */
int pep_stage_input_check_spec(struct pep_stage_input *in, const struct pep_model_spec *spec);
/* The rows of `groups` into params on every rank (pep_ckpt_read_params). Collective. */
int pep_stage_input_params(struct pep_stage_input *in, const struct pep_param_table *t, float *params,
                           unsigned groups);
/* pep_stage_input_params for a file that may name its encoder's checkpoint (an adapted.h5 of
 * checkpoint.encoder = reference): rank 0 reads plm from `base` (NULL: the named path) after
 * checking its SHA-256 (pep_ckpt_read_params_based). Collective. */
int pep_stage_input_params_based(struct pep_stage_input *in, const char *base, const struct pep_param_table *t,
                                 float *params, unsigned groups);
/* Adam moments of `groups` (m, v indexed like params; either may be NULL: not read) and their
 * step count. Collective. */
int pep_stage_input_moments(struct pep_stage_input *in, const struct pep_param_table *t, float *m, float *v,
                            unsigned groups, int64_t *step);
/* Language `lang`'s task state into `state` (layout as struct pep_ckpt_task) and `info` (may be
 * NULL). found NULL: the state must be there (pep_ckpt_read_task's error otherwise); else *found
 * = 0 when the file has none for `lang` (state and info untouched). Collective. */
int pep_stage_input_task(struct pep_stage_input *in, const char *lang, const struct pep_param_table *t,
                         unsigned groups, float *state, struct pep_ckpt_task_info *info, int *found);
/* best->w, best->f1 and best->step (best->groups set by the caller) from the file's /best.
 * *found = 0 when the file has none (written before /best existed): best is left untouched.
 * Collective. */
int pep_stage_input_best(struct pep_stage_input *in, const struct pep_param_table *t, struct pep_stage_best *best,
                         int *found);
/* The series back from the file's /log (at most PEP_STAGE_SERIES_MAX). series[0] must be there;
 * a later series missing from an older checkpoint gets NaN for each of series[0]'s steps.
 * Collective. */
int pep_stage_input_series(struct pep_stage_input *in, struct pep_series *series, int nseries);

/* --init: opens `path`, checks its model shape against m's and loads the rows of `groups` on
 * every rank, then closes it: the file is read once, by rank 0. Collective. */
int pep_stage_load_init(MPI_Comm comm, const char *path, struct pep_model *m, unsigned groups);
/* Restores a stage from the resumed checkpoint `in`: the parameters of `groups`, the optimizer's
 * moments and step count (its own range), the completed step (*start) and the /log series.
 * Collective. */
int pep_stage_resume_state(struct pep_stage_input *in, struct pep_model *m, unsigned groups, struct pep_optim *opt,
                           struct pep_series *series, int nseries, long *start);
/* Loads `groups` of the model from a checkpoint file (read once); a model shape other than m's is
 * an error naming both. Not collective: for commands that run on one rank. */
int pep_stage_load(const char *path, struct pep_model *m, unsigned groups, struct pep_ckpt_info *info_out);

#endif
