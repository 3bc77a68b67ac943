/* MAML priming (Gheini, Ma, May 2022; algorithm in docs/model.md, "MAML priming"): the inner loop adapts
 * the inner set I (default PE + head) with k SGD steps on a support batch; the meta-gradient
 * of the query loss after adaptation flows to the outer set O (default the PLM) through the
 * adjoint recursion, with Hessian-vector products by central differences of two full
 * gradients on the same support batch (same dropout masks), formed in place in the model's
 * gradient block; with ReLU adapters both passes replay the ReLU pattern of the inner step's
 * forward, so h is autograd's HVP also across a kink. Memory: the model's own blocks, k + 1
 * copies of the inner set, the meta-gradient and (order 2) the adjoint of theta and k ReLU
 * patterns (one bit per adapter unit and token). No MPI here: the caller sums meta-gradients
 * across ranks through a reduce callback (pep_maml_outer_step), and with task groups sums
 * the inner set's gradients inside the group through opts.group_sum. */
#ifndef PEP_MAML_H
#define PEP_MAML_H

#include <stddef.h>
#include <stdint.h>

#include "maml/kinds.h"
#include "model/model.h"
#include "optim/optim.h"

struct pep_maml_opts {
    enum pep_maml_method method;
    int order;          /* 1 or 2 */
    int inner_steps;    /* k */
    float inner_lr;     /* a */
    float fd_eps;       /* eps0: the HVP step is eps0 / ||v|| */
    unsigned inner;     /* group mask of I */
    unsigned outer;     /* group mask of O */
    enum pep_maml_pe_init pe_init; /* META: the inner loop starts from the model's PE + head; FRESH: one fixed
                           init drawn from fresh_seed; EPISODE: drawn anew every episode
                           (pep_model_init_weights, seeded by the task seed) */
    uint64_t fresh_seed;/* seed of the fixed fresh init */
    enum pep_maml_inner_optim inner_optim; /* SGD, Adam or FINETUNE (first order only): every group's rule ... */
    struct pep_maml_rule {
        int set;        /* ... unless set: this group's own rule and rate */
        enum pep_maml_inner_optim optim;
        float lr;
    } rule[PEP_GROUP_COUNT];
    float beta1, beta2, adam_eps; /* inner Adam */
    /* FINETUNE: fine-tuning's optimizer (kind, lr and schedule, betas, eps, weight decay, clip;
     * no moments: begin = end = 0) and the first of its steps the k inner steps replay. The clip
     * is by the norm of the inner set's PE + head gradient, what fine-tuning trains and clips. */
    struct pep_optim replay;
    long replay_start;
    int meta_batch;     /* tasks per meta-step (the meta-gradient is their mean) */
    /* Task groups (maml.group_size > 1): the G ranks of a group each pass pep_maml_task a
     * share of the task's support and query sentences. group_sum(x, n, status, ud) is collective
     * over the group: it agrees on `status` (returning the group's worst, with its message), and
     * if that is PEP_OK sums x[0..n) over the group in place. The task calls it after every
     * pass with the inner set's gradient weighted by this rank's share of the batch's labelled
     * tokens, so every rank adapts with the whole batch's mean gradient; the theta rows stay
     * weighted shares that the meta-gradient sum over all ranks adds up. group_lead is 1 on one
     * rank per group: only it adds group-summed rows (I n O) to the meta-gradient. NULL: each
     * task runs whole in this process. */
    int (*group_sum)(float *x, size_t n, int status, void *ud);
    void *group_ud;
    int group_lead;
};

struct pep_maml_task_result {
    float support_loss;   /* support loss before the last inner step (multitask-matched: the query loss);
                             with task groups the whole batch's, on every rank of the group */
    float query_loss;     /* meta-loss of the task (likewise the whole batch's) */
    const float *adapted; /* inner-set state after adaptation (pep_maml_inner_numel floats); valid until the next task */
    const float *start;   /* inner-set state the inner loop started from (same size and lifetime) */
};

struct pep_maml;

/* The options come from the config's [maml] (pep_maml_opts_from_config in src/config). */
int pep_maml_create(struct pep_model *m, const struct pep_maml_opts *o, struct pep_maml **out);
/* The inner rule group g follows under these options (its own, or maml.inner_optim / inner_lr). */
struct pep_maml_rule pep_maml_rule_of(const struct pep_maml_opts *o, enum pep_group g);
void pep_maml_destroy(struct pep_maml **mm);
/* Clears the meta-gradient before a meta-step. */
void pep_maml_zero(struct pep_maml *mm);
/* Overlap hook: told that meta-gradient floats [begin, end) (offsets into the model's flat
 * block, inside the update range) hold their final value for this meta-step on this process. */
typedef int (*pep_maml_ready_fn)(size_t begin, size_t end, void *ud);
/* Sets `ready` (NULL = none) for the next pep_maml_task only — the meta-step's last local
 * task. During that task's last backward pass every range of the update range is reported
 * once, as the model's layer-done callback (pep_model_set_grad_ready) finishes it, top layer
 * first; what the pass did not report follows when the pass ends. So the caller can start
 * summing finished layers across processes while the lower layers still compute (jobs/stage_prime.c).
 * The meta-gradient's bits are the same with or without it. */
void pep_maml_set_ready(struct pep_maml *mm, pep_maml_ready_fn ready, void *ud);
/* Runs one task and accumulates its meta-gradient / meta_batch. `seed` fixes the dropout
 * masks of this task's passes. Model parameters are restored afterwards. */
int pep_maml_task(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query, uint64_t seed,
                  struct pep_maml_task_result *res);
/* The meta-gradient block (the model's numel floats; only the updated range is non-zero). */
float *pep_maml_grad(struct pep_maml *mm);
/* The float range the outer step updates (O, or O u I for the multi-task baseline). */
void pep_maml_update_range(const struct pep_maml *mm, size_t *begin, size_t *end);
/* The float range and size of the inner set (per-task states). */
void pep_maml_inner_range(const struct pep_maml *mm, size_t *begin, size_t *end);
/* Sums the meta-gradient through `reduce` (NULL = one process), then takes one optimizer
 * step on the update range. */
int pep_maml_outer_step(struct pep_maml *mm, struct pep_optim *opt, int (*reduce)(float *g, size_t n, void *ud),
                        void *ud, double *gnorm);

#endif
