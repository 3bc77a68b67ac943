/* What every stage driver shares: command-line parsing (--config, --set, --out, --init,
 * --resume, --model), the resolved config written to <out>/config.ini by rank 0, the output folder, the
 * tag names of data.tags, finding the tokenizer and leaving a copy for the next stage, signal
 * handling for preemption (SIGTERM / SIGUSR1 -> finish the step, checkpoint, exit 75) and
 * progress lines (step/total, loss, tokens/s, ETA). */
#ifndef PEP_RUN_H
#define PEP_RUN_H

#include <stdio.h>

#include "core/clock.h"
#include "config/config.h"
#include "metrics/conlleval.h"

#define PEP_EXIT_PREEMPTED 75

/* Path buffers of the stages: an option's value (--out, --init ...); a folder built from them
 * in which file names are then placed; a path built from them (pep_run_path: longer ones are
 * a usage error, never truncated); a path with a suffix added (".tmp"). */
#define PEP_RUN_ARG_MAX 1024
#define PEP_RUN_DIR_MAX 1100
#define PEP_RUN_PATH_MAX 1200
#define PEP_RUN_TMP_MAX 1300

struct pep_run {
    const char *stage;
    struct pep_config cfg;
    char config_path[PEP_RUN_ARG_MAX];
    char out[PEP_RUN_ARG_MAX];       /* run.out resolved */
    char init[PEP_RUN_ARG_MAX];      /* --init FILE: the checkpoint to start from */
    char model[PEP_RUN_ARG_MAX];     /* --model FILE (evaluate) */
    char resume[PEP_RUN_ARG_MAX];    /* auto | none | PATH */
    char data_root[PEP_RUN_ARG_MAX]; /* resolved data root */
    int rank, size;
};

/* Parses the common options; `extra` options the stage accepts beyond them are rejected
 * with a usage line. Not collective. */
int pep_run_parse(struct pep_run *run, const char *stage, int argc, char **argv);
/* Creates the output folder and writes the resolved config to <out>/config.ini (rank 0), then
 * prints one line naming it with a digest (the whole config with --verbose). */
int pep_run_start(struct pep_run *run);
/* Resolves a path relative to run.out unless absolute. PEP_ERR_USAGE if it does not fit in
 * `len` (never truncated silently). Not collective. */
int pep_run_path(const struct pep_run *run, const char *name, char *buf, size_t len);

/* The fine-tuning optimizer the inner rule finetune replays: the resolved [optim] of the job
 * file maml.replay_from (as given, else beside the --config file), read with the same loader
 * and checks as --config, with no moments (begin = end = 0). Not collective. */
struct pep_optim;
int pep_run_replay_optim(const struct pep_run *run, struct pep_optim *out);

/* Tag names of data.tags, and their count. */
int pep_run_tags(const struct pep_run *run, char names[][PEP_TAG_NAME_MAX], int cap, int *n);
/* Where the tokenizer is: model.tokenizer if absolute, else in run.out, else beside the
 * --init / --model checkpoint. *found = 0 if none exists (path then names run.out's). */
int pep_run_tokenizer_path(const struct pep_run *run, char *path, size_t len, int *found);
/* Loads the tokenizer (pep_run_tokenizer_path) and leaves a copy in run.out for the next stage. */
struct pep_spm;
int pep_run_tokenizer(const struct pep_run *run, struct pep_spm **out);


/* Preemption: installs SIGTERM / SIGUSR1 handlers; pep_run_stop_requested() turns true once
 * one arrived. */
void pep_run_install_signals(void);
int pep_run_stop_requested(void);

struct pep_progress {
    const char *what;
    long first, total; /* the step the run started after (a resume's checkpoint step), the last */
    double t0, last;
    double tokens;
};
void pep_progress_start(struct pep_progress *p, const char *what, long first, long total);
/* Prints "what step/total loss tokens/s ETA" through pep_info (rank 0 only under MPI); `step` is
 * the stage's own step count (after a resume too), the ETA comes from this run's steps. */
void pep_progress_report(struct pep_progress *p, long step, double loss, double tokens_since_last, const char *extra);

#endif
