/* The multi-task baselines of priming (maml_private.h): maml.method = multitask (ordinary joint
 * training of O u I on every task's support and query batches, no inner loop) and
 * multitask-matched (PE + head restart per task as MAML's inner loop would start them, no
 * adaptation; the encoder learns from the query batch through them). pep_maml_task dispatches
 * here; the meta-gradient block and its final pass are maml.c's. */
#include <string.h>

#include "core/error.h"
#include "maml/maml_private.h"

/* Multi-task matched to MAML: PE + head restart as MAML's would, no adaptation; the encoder
 * (O) takes the query batch's gradient through them. The support batch is not used. With task
 * groups every row is this rank's weighted share (no overlap with the backward). */
int maml_multitask_matched_task(struct pep_maml *mm, const struct pep_batch *query, uint64_t seed,
                                struct pep_maml_task_result *res)
{
    struct pep_model *m = mm->m;
    size_t nin = mm->n_in;
    float lq = 0.0f, scale = 1.0f / (float)mm->o.meta_batch;
    memcpy(mm->restore, m->params + mm->in_b, nin * sizeof(float));
    maml_inner_start(mm, seed);
    memcpy(mm->phi, m->params + mm->in_b, nin * sizeof(float));
    int rc;
    if (mm->o.group_sum) {
        rc = maml_loss_grad(m, query, maml_pass_seed(seed, 0), mm->o.outer, &lq);
        if (rc == PEP_OK) {
            maml_meta_put(mm, mm->out_b, mm->out_e, m->grads + mm->out_b, scale * mm->wq);
            mm->meta_fresh = 0;
        }
        float unused = 0.0f;
        rc = maml_group_losses(mm, rc, &unused, &lq);
    } else {
        maml_final_begin(mm, FIN_GRAD, mm->out_b, mm->out_e, scale, 0.0f);
        rc = maml_loss_grad(m, query, maml_pass_seed(seed, 0), mm->o.outer, &lq);
        if (rc == PEP_OK) rc = maml_final_end(mm);
    }
    if (rc == PEP_OK) {
        res->support_loss = res->query_loss = lq;
        res->adapted = res->start = mm->phi;
    }
    memcpy(m->params + mm->in_b, mm->restore, nin * sizeof(float));
    return rc;
}

/* Both batches' gradients of O u I into the meta-gradient at 0.5 / meta_batch each; the query
 * pass is the task's final pass. PE + head are trained, not restarted. */
int maml_multitask_task(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query,
                        uint64_t seed, struct pep_maml_task_result *res)
{
    struct pep_model *m = mm->m;
    unsigned groups = mm->o.inner | mm->o.outer;
    float ls = 0.0f, lq = 0.0f;
    float scale = 0.5f / (float)mm->o.meta_batch;
    if (mm->o.group_sum) { /* task groups: every row is a weighted share, added up by the meta-gradient sum */
        int rc = maml_loss_grad(m, support, maml_pass_seed(seed, 0), groups, &ls);
        if (rc == PEP_OK) {
            maml_meta_put(mm, mm->up_b, mm->up_e, m->grads + mm->up_b, scale * mm->ws);
            mm->meta_fresh = 0;
            rc = maml_loss_grad(m, query, maml_pass_seed(seed, 1), groups, &lq);
        }
        if (rc == PEP_OK) maml_meta_put(mm, mm->up_b, mm->up_e, m->grads + mm->up_b, scale * mm->wq);
        PEP_CALL(maml_group_losses(mm, rc, &ls, &lq));
    } else {
        PEP_CALL(maml_loss_grad(m, support, maml_pass_seed(seed, 0), groups, &ls));
        maml_meta_put(mm, mm->up_b, mm->up_e, m->grads + mm->up_b, scale);
        mm->meta_fresh = 0;
        maml_final_begin(mm, FIN_GRAD, mm->up_b, mm->up_e, scale, 0.0f);
        PEP_CALL(maml_loss_grad(m, query, maml_pass_seed(seed, 1), groups, &lq));
        PEP_CALL(maml_final_end(mm));
    }
    res->support_loss = ls;
    res->query_loss = lq;
    res->adapted = res->start = m->params + mm->in_b;
    return PEP_OK;
}
