/* What the MAML files share and nothing outside them includes (maml.h is the interface): the
 * state of a pep_maml and the helpers both the MAML arm and the multi-task arms use.
 *   maml.c       inner-rule lookup, create / destroy, the meta-gradient block and the final pass
 *                that fills it, the MAML arm (inner loop, adjoint recursion, HVPs), the task
 *                dispatch and the outer step
 *   multitask.c  the multi-task baselines (maml.method = multitask, multitask-matched) */
#ifndef PEP_MAML_PRIVATE_H
#define PEP_MAML_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "maml/maml.h"

struct pep_maml {
    struct pep_model *m;
    struct pep_maml_opts o;
    size_t in_b, in_e, out_b, out_e, up_b, up_e, n_in;
    float *phi;        /* (k + 1) x n_in: phi_0 .. phi_k */
    float *init;       /* n_in: the inner loop's start (fresh init, or the meta values at task start) */
    float *v;          /* n_in: adjoint of the inner set */
    float *g;          /* numel: adjoint of theta (outer groups outside I; only those rows are used); order 2 only */
    float *meta;       /* numel: accumulated meta-gradient (rows [up_b, up_e)) */
    int meta_fresh;    /* pep_maml_zero was called and nothing written since: the next write stores */
    float *restore;    /* n_in: the inner set's values before the task */
    float *am, *av;    /* n_in each: inner Adam / replayed AdamW moments (rules adam, finetune) */
    struct inner_seg { /* the inner set's groups in table order, each with its rule */
        size_t b, e;   /* offsets into the inner set */
        enum pep_group group;
        struct pep_maml_rule r;
    } seg[PEP_GROUP_COUNT];
    int nseg;
    float a_ref;       /* order 2: the largest SGD rate; the HVP direction is u = (a_g / a_ref) v per group */
    float *u;          /* n_in: that direction, when the rates differ (else u = v) */
    float ws, wq;      /* this rank's share of the task's support / query labels (1 without a group) */
    pep_maml_ready_fn ready; /* pep_maml_set_ready: for the next task only */
    void *ready_ud;
    struct final_pass {
        enum { FIN_GRAD, FIN_HVP, FIN_ADJOINT } kind; /* meta += scale * (gradient | HVP-updated adjoint | adjoint) */
        size_t b, e;   /* the meta range the task adds to (the update range) */
        float scale;   /* 1 / meta_batch (multitask: 0.5 / meta_batch per batch) */
        float s;       /* FIN_HVP: the adjoint step inner_lr / 2e of hvp_step */
        size_t *done;  /* [begin, end) pairs finished during the pass (at most one per parameter row) */
        int ndone;
    } fin;
    uint64_t *relu;    /* order 2 with ReLU adapters: k x relu_words, the ReLU pattern of inner step j's
                        * forward, which its HVP passes replay (docs/model.md "MAML priming") */
    size_t relu_words; /* per inner step: pep_model_relu_pattern_words of the longest batch */
};

/* The seed of a task's pass j (its dropout masks): the same for a pass and its HVP replays. */
static inline uint64_t maml_pass_seed(uint64_t seed, int j)
{
    return pep_splitmix64(seed ^ (0x51ed270b27a3c1f5ULL * (uint64_t)(j + 1)));
}

/* ---- maml.c ---- */

/* meta[b, e) += scale * x[0, e - b), or = after pep_maml_zero. Callers write all of [up_b, up_e)
 * in one task before clearing meta_fresh. */
void maml_meta_put(struct pep_maml *mm, size_t b, size_t e, const float *x, float scale);
/* Starts the task's final pass of kind FIN_* over meta[b, e): the rows it finishes become
 * meta-gradient as the backward reports them (when the caller set a ready callback). */
void maml_final_begin(struct pep_maml *mm, int kind, size_t b, size_t e, float scale, float s);
/* Ends the final pass: finishes (and reports) every part of the range the backward did not. */
int maml_final_end(struct pep_maml *mm);
/* Task groups: the whole batch's mean losses from the shares' (and the agreement on `status`);
 * without a group just `status`. */
int maml_group_losses(struct pep_maml *mm, int status, float *ls, float *lq);
/* Loss and gradient (groups) at the current parameters. */
int maml_loss_grad(struct pep_model *m, const struct pep_batch *b, uint64_t seed, unsigned groups, float *loss);
/* phi_0 of a task into the model's inner set (pe_init: meta values, the fixed fresh init, or a
 * draw seeded by the task's seed). */
void maml_inner_start(struct pep_maml *mm, uint64_t seed);

/* ---- multitask.c ---- */

/* maml.method = multitask: one task's support and query gradients of O u I, each weighted
 * 0.5 / meta_batch, into the meta-gradient; PE + head persist (no inner loop). */
int maml_multitask_task(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query,
                        uint64_t seed, struct pep_maml_task_result *res);
/* maml.method = multitask-matched: PE + head restart as MAML's would, no adaptation; the query
 * batch's gradient of O, weighted 1 / meta_batch, into the meta-gradient. */
int maml_multitask_matched_task(struct pep_maml *mm, const struct pep_batch *query, uint64_t seed,
                                struct pep_maml_task_result *res);

#endif
