/* The training-step loop that `peprime pretrain` and `peprime finetune` share. Each step:
 * the global batch (one training language picked by data size, then optim.batch_size of its
 * sentences, all drawn from the (run.seed, step, stream) RNG so the batch does not depend on
 * the rank count; rank r takes its slice), the stage's preparation of the slice (MLM masking),
 * forward + backward of the trained groups (in optim.accumulate micro-batches of the slice,
 * whose gradients add up to the slice's), the loss and gradient weighted over the ranks
 * and summed (one gradient allreduce), the optimizer step (clipping and learning-rate
 * schedule: src/optim), an optional evaluation, the /log row and its <out>/log.csv line, the
 * progress line every run.log_every steps, and the periodic checkpoint / stop-signal check. What is not a step
 * (data loading, model set-up, resume, the final checkpoint) stays in the stage. */
#ifndef PEP_TRAIN_LOOP_H
#define PEP_TRAIN_LOOP_H

#include <stdint.h>

#include "nerdata.h"
#include "stage.h"

struct pep_train_loop {
    const char *stage;             /* "pretrain", "finetune": progress lines and messages */
    uint64_t stream;               /* RNG stream of the batch choice (per stage, so stages draw differently) */
    const struct pep_nerset *sets; /* the training sets, one per language */
    int nsets;
    struct pep_model *m;
    unsigned groups;               /* the trained parameter groups (zero_grad, backward) */
    struct pep_optim *opt;         /* over the float range of `groups`: that range is reduced and stepped */
    struct pep_stage_save *save;   /* what a periodic or stop checkpoint writes */
    /* The /log series: the loop fills those named step, loss, wall_time, tokens, tokens_per_s,
     * lr (the step's learning rate), grad_norm (the gradient's norm before clipping) and
     * eval_series (a stage without evaluation has none); any other name is an error. They
     * also go to <out>/log.csv (pep_stage_csv_open). */
    struct pep_series *series;
    int nseries;
    const char *eval_series;
    /* Optional (NULL: none): called on this rank's slice in b after batching, before the forward. */
    int (*prepare)(void *ud, struct pep_batch *b, long step);
    /* The dropout seed of the forward at `step` (0-based). */
    uint64_t (*dropout_seed)(void *ud, long step);
    /* Optional: after the optimizer step `done` (1-based) when optim.eval_every divides it and
     * after the last step; *score goes into eval_series (-1 on the other steps). Collective. */
    int (*eval)(void *ud, long done, double *score);
    void *ud;
};

/* The most sentences one micro-batch of a rank holds with `size` ranks: its share of
 * optim.batch_size split in optim.accumulate (at most one sentence each): the batch size the
 * stage's model is created for. */
int pep_train_loop_micro_batch(const struct pep_config *cfg, int size);

/* Runs steps start .. optim.steps - 1 over stg's communicator; *end gets the step count
 * reached (optim.steps, or start if that is already past it). A stop signal checkpoints and
 * returns PEP_ERR_INTERRUPTED (pep_stage_step_done). Collective. */
int pep_train_loop_run(struct pep_stage *stg, const struct pep_train_loop *tl, long start, long *end);

#endif
