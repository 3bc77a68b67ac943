/* MAML meta-gradients: first order and second order by the adjoint recursion (maml.h). The
 * multi-task baselines' tasks are in multitask.c; pep_maml_task dispatches to them. */
#include "maml/maml.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/dispatch.h"
#include "maml/maml_private.h"

struct pep_maml_rule pep_maml_rule_of(const struct pep_maml_opts *o, enum pep_group g)
{
    if (o->rule[g].set) return o->rule[g];
    return (struct pep_maml_rule){0, o->inner_optim, o->inner_lr};
}

/* The inner set's groups as segments with their rules; checks what the order allows and sets
 * the HVP's reference rate (order 2: all SGD; one rate, or a_ref = the largest and u != v). */
static int inner_segments(struct pep_maml *mm)
{
    const struct pep_maml_opts *o = &mm->o;
    const struct pep_param_table *t = &mm->m->table;
    int differ = 0, moments = 0;
    mm->nseg = 0, mm->a_ref = 0.0f;
    for (int g = 0; g < PEP_GROUP_COUNT; g++) {
        size_t b, e;
        if (!(o->inner & PEP_GROUP_BIT(g)) || pep_param_table_range(t, PEP_GROUP_BIT(g), &b, &e) != PEP_OK || b == e)
            continue;
        struct inner_seg *sg = &mm->seg[mm->nseg++];
        sg->b = b - mm->in_b, sg->e = e - mm->in_b, sg->group = (enum pep_group)g;
        sg->r = pep_maml_rule_of(o, (enum pep_group)g);
        moments |= sg->r.optim != PEP_MAML_INNER_SGD;
        if (sg->r.optim == PEP_MAML_INNER_FINETUNE)
            PEP_CHECK(o->replay.lr > 0.0f, PEP_ERR_USAGE,
                      "the %s group's inner rule is finetune, but no fine-tuning optimizer was given to replay "
                      "(maml.replay_from)", pep_group_name(sg->group));
        if (o->order == 2) {
            PEP_CHECK(sg->r.optim == PEP_MAML_INNER_SGD, PEP_ERR_USAGE,
                      "the %s group's inner rule %s is first order only: second order differentiates SGD steps",
                      pep_group_name(sg->group), pep_maml_inner_optim_name(sg->r.optim));
            if (mm->nseg > 1 && sg->r.lr != mm->seg[0].r.lr) differ = 1;
            if (sg->r.lr > mm->a_ref) mm->a_ref = sg->r.lr;
        }
    }
    int rc = PEP_OK;
    if (moments && o->method == PEP_MAML_METHOD_MAML) {
        PEP_ALLOC_GOTO(rc, mm->am, mm->n_in);
        PEP_ALLOC_GOTO(rc, mm->av, mm->n_in);
    }
    if (differ) PEP_ALLOC_GOTO(rc, mm->u, mm->n_in);
    /* one rate for all: a_ref is that rate and u = v, the recursion of a single scalar rate */
    if (o->order == 2 && !differ && mm->nseg) mm->a_ref = mm->seg[0].r.lr;
cleanup:
    return rc;
}

int pep_maml_create(struct pep_model *m, const struct pep_maml_opts *o, struct pep_maml **out)
{
    *out = NULL;
    PEP_CHECK(o->order == 1 || o->order == 2, PEP_ERR_USAGE, "maml.order must be 1 or 2, got %d", o->order);
    PEP_CHECK(o->inner_steps >= 1 && o->meta_batch >= 1, PEP_ERR_USAGE, "inner_steps and meta_batch must be >= 1");
    int rc = PEP_OK;
    struct pep_maml *mm = calloc(1, sizeof *mm);
    PEP_CHECK(mm, PEP_ERR_NOMEM, "out of memory");
    mm->m = m;
    mm->o = *o;
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, o->inner, &mm->in_b, &mm->in_e));
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, o->outer, &mm->out_b, &mm->out_e));
    if (o->method == PEP_MAML_METHOD_MULTITASK)
        PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, o->inner | o->outer, &mm->up_b, &mm->up_e));
    else
        mm->up_b = mm->out_b, mm->up_e = mm->out_e;
    mm->n_in = mm->in_e - mm->in_b;
    size_t n = m->table.numel;
    PEP_ALLOC_GOTO(rc, mm->phi, (size_t)(o->inner_steps + 1) * mm->n_in);
    PEP_ALLOC_GOTO(rc, mm->init, mm->n_in);
    PEP_ALLOC_GOTO(rc, mm->v, mm->n_in);
    /* first order reads theta's gradient straight from the model's block */
    if (o->order == 2) {
        PEP_ALLOC_GOTO(rc, mm->g, n);
        mm->relu_words = pep_model_relu_pattern_words(m, m->spec.max_B * m->spec.max_T);
        if (mm->relu_words) PEP_ALLOC_GOTO(rc, mm->relu, (size_t)o->inner_steps * mm->relu_words);
    }
    PEP_ALLOC_GOTO(rc, mm->meta, n);
    PEP_ALLOC_GOTO(rc, mm->restore, mm->n_in);
    PEP_ALLOC_GOTO(rc, mm->fin.done, 2 * (size_t)m->table.count);
    PEP_CALL_GOTO(rc, inner_segments(mm));
    /* the fixed fresh start of the non-PLM inner groups: the model's own seeded initialiser */
    if (o->pe_init == PEP_MAML_PE_INIT_FRESH && o->method != PEP_MAML_METHOD_MULTITASK) {
        float *save = NULL;
        PEP_ALLOC_GOTO(rc, save, n);
        memcpy(save, m->params, n * sizeof(float));
        pep_model_init_weights(m, o->fresh_seed, o->inner & ~PEP_GROUP_BIT(PEP_GROUP_PLM));
        memcpy(mm->init, m->params + mm->in_b, mm->n_in * sizeof(float));
        memcpy(m->params, save, n * sizeof(float));
        pep_free(save);
    }
    *out = mm;
    return PEP_OK;
cleanup:
    pep_maml_destroy(&mm);
    return rc;
}

void pep_maml_destroy(struct pep_maml **pmm)
{
    if (!pmm || !*pmm) return;
    struct pep_maml *mm = *pmm;
    pep_free(mm->phi);
    pep_free(mm->init);
    pep_free(mm->v);
    pep_free(mm->g);
    pep_free(mm->meta);
    pep_free(mm->restore);
    pep_free(mm->am);
    pep_free(mm->av);
    pep_free(mm->u);
    pep_free(mm->fin.done);
    pep_free(mm->relu);
    free(mm);
    *pmm = NULL;
}

/* Zeroing is lazy: the first task's write stores instead of adding (maml_meta_put), so a meta-step
 * makes no pass over the 7 M-float block just to clear it; a rank that ran no task clears it
 * when the gradient is read (meta_settle). */
void pep_maml_zero(struct pep_maml *mm) { mm->meta_fresh = 1; }

static void meta_settle(struct pep_maml *mm)
{
    if (mm->meta_fresh) memset(mm->meta + mm->up_b, 0, (mm->up_e - mm->up_b) * sizeof(float));
    mm->meta_fresh = 0;
}

float *pep_maml_grad(struct pep_maml *mm)
{
    meta_settle(mm);
    return mm->meta;
}

/* meta[b, e) += scale * x[0, e - b), or = after pep_maml_zero. Callers write all of [up_b, up_e)
 * in one task before clearing meta_fresh. */
PEP_DISPATCH
void maml_meta_put(struct pep_maml *mm, size_t b, size_t e, const float *x, float scale)
{
    float *restrict d = mm->meta + b;
    const float *restrict s = x;
    size_t n = e - b;
    if (mm->meta_fresh) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) d[i] = scale * s[i];
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) d[i] += scale * s[i];
    }
}

void pep_maml_update_range(const struct pep_maml *mm, size_t *begin, size_t *end)
{
    *begin = mm->up_b;
    *end = mm->up_e;
}

void pep_maml_inner_range(const struct pep_maml *mm, size_t *begin, size_t *end)
{
    *begin = mm->in_b;
    *end = mm->in_e;
}

void pep_maml_set_ready(struct pep_maml *mm, pep_maml_ready_fn ready, void *ud)
{
    mm->ready = ready;
    mm->ready_ud = ready ? ud : NULL;
}

/* The final pass's contribution to meta[b, e), all on one side of the inner set's edges
 * (inner: the rows of phi_0's gradient v). FIN_GRAD: the pass's gradient; FIN_HVP: the
 * adjoint after its last HVP step (v or g += s gr); FIN_ADJOINT: the adjoint as it stands. */
PEP_DISPATCH
static void finish_part(struct pep_maml *mm, size_t b, size_t e, int inner)
{
    const struct final_pass *f = &mm->fin;
    if (b >= e) return;
    const float *restrict gr = mm->m->grads + b;
    const float *src = gr;
    if (f->kind != FIN_GRAD) {
        float *restrict adj = inner ? mm->v + (b - mm->in_b) : mm->g + b;
        if (f->kind == FIN_HVP) {
            float s = f->s;
#pragma omp simd
            for (size_t i = 0; i < e - b; i++) adj[i] += s * gr[i];
        }
        src = adj;
    }
    maml_meta_put(mm, b, e, src, f->scale);
}

/* The task's contribution to meta[b, e) (clipped to the final pass's range) once the final
 * pass's gradient there is final: the one place the meta-gradient gets a task's last pass,
 * with the same operations whether called during the pass or after it, so the bits do not
 * depend on when a range is finished. Stores instead of adding after pep_maml_zero until the
 * task ends (maml_final_end): each float is finished once per task. */
static void finish_range(struct pep_maml *mm, size_t b, size_t e)
{
    const struct final_pass *f = &mm->fin;
    if (b < f->b) b = f->b;
    if (e > f->e) e = f->e;
    if (b >= e) return;
    size_t ib = mm->in_b < b ? b : mm->in_b > e ? e : mm->in_b, ie = mm->in_e < ib ? ib : mm->in_e > e ? e : mm->in_e;
    finish_part(mm, b, ib, 0);
    finish_part(mm, ib, ie, 1);
    finish_part(mm, ie, e, 0);
}

/* The model's layer-done callback during a final pass: finish the range, then tell the caller. */
static int on_grad_ready(size_t b, size_t e, void *ud)
{
    struct pep_maml *mm = ud;
    struct final_pass *f = &mm->fin;
    if (b < f->b) b = f->b;
    if (e > f->e) e = f->e;
    if (b >= e) return PEP_OK;
    finish_range(mm, b, e);
    f->done[2 * f->ndone] = b, f->done[2 * f->ndone + 1] = e;
    f->ndone++;
    return mm->ready(b, e, mm->ready_ud);
}

/* Starts the task's final pass: the rows it finishes become meta-gradient as the backward
 * reports them (when the caller set a ready callback). */
void maml_final_begin(struct pep_maml *mm, int kind, size_t b, size_t e, float scale, float s)
{
    struct final_pass *f = &mm->fin;
    f->kind = kind, f->b = b, f->e = e, f->scale = scale, f->s = s, f->ndone = 0;
    if (mm->ready) pep_model_set_grad_ready(mm->m, on_grad_ready, mm);
}

/* Ends the final pass: finishes (and reports) every part of the range the backward did not. */
int maml_final_end(struct pep_maml *mm)
{
    struct final_pass *f = &mm->fin;
    pep_model_set_grad_ready(mm->m, NULL, NULL);
    for (int i = 1; i < f->ndone; i++) /* sort the finished ranges by start (few: one per row at most) */
        for (int j = i; j > 0 && f->done[2 * (j - 1)] > f->done[2 * j]; j--) {
            size_t b = f->done[2 * j], e = f->done[2 * j + 1];
            f->done[2 * j] = f->done[2 * (j - 1)], f->done[2 * j + 1] = f->done[2 * (j - 1) + 1];
            f->done[2 * (j - 1)] = b, f->done[2 * (j - 1) + 1] = e;
        }
    size_t at = f->b;
    for (int i = 0; i <= f->ndone; i++) {
        size_t gap_end = i < f->ndone ? f->done[2 * i] : f->e;
        if (gap_end > at) {
            finish_range(mm, at, gap_end);
            if (mm->ready) PEP_CALL(mm->ready(at, gap_end, mm->ready_ud));
        }
        if (i < f->ndone && f->done[2 * i + 1] > at) at = f->done[2 * i + 1];
    }
    f->ndone = 0;
    mm->meta_fresh = 0; /* every float of the range is written: later tasks add */
    return PEP_OK;
}

/* Labelled tokens of a batch (the denominator of its mean loss). */
static int labelled(const struct pep_batch *b)
{
    int n = 0;
    if (b->labels)
        for (int i = 0; i < pep_batch_tokens(b); i++) n += b->labels[i] != PEP_IGNORE_INDEX;
    return n;
}

/* Task groups: x[0..n) <- the sum over the group of w * x, after agreeing on `status`; without
 * a group just `status`. x may lie in the model's gradient block (then the model learns that
 * rows its own batches did not touch were written). */
static int group_sum(struct pep_maml *mm, int status, float *x, size_t n, float w)
{
    if (!mm->o.group_sum) return status;
    if (status == PEP_OK)
        for (size_t i = 0; i < n; i++) x[i] *= w;
    const float *g = mm->m->grads;
    if (x >= g && x < g + mm->m->table.numel) pep_model_grads_written(mm->m, (size_t)(x - g), (size_t)(x - g) + n);
    return mm->o.group_sum(x, n, status, mm->o.group_ud);
}

/* Task groups: this rank's weights ws, wq = its labelled tokens / the whole batch's, so the
 * weighted sum of the shares' mean-loss gradients is the whole batch's mean-loss gradient. */
static int group_weights(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query)
{
    mm->ws = mm->wq = 1.0f;
    if (!mm->o.group_sum) return PEP_OK;
    float mine[2] = {(float)labelled(support), (float)labelled(query)}, all[2] = {mine[0], mine[1]};
    PEP_CALL(group_sum(mm, PEP_OK, all, 2, 1.0f)); /* counts below 2^24: exact in float */
    mm->ws = all[0] > 0.0f ? mine[0] / all[0] : 0.0f;
    mm->wq = all[1] > 0.0f ? mine[1] / all[1] : 0.0f;
    return PEP_OK;
}

/* Task groups: the whole batch's mean losses from the shares' (and the agreement on `status`). */
int maml_group_losses(struct pep_maml *mm, int status, float *ls, float *lq)
{
    if (!mm->o.group_sum) return status;
    float l[2] = {mm->ws * *ls, mm->wq * *lq};
    PEP_CALL(group_sum(mm, status, l, 2, 1.0f));
    *ls = l[0], *lq = l[1];
    return PEP_OK;
}

/* Loss at the current parameters; adds its gradient (groups) to the model's gradient block. */
static int add_grad(struct pep_model *m, const struct pep_batch *b, uint64_t seed, unsigned groups, float *loss)
{
    PEP_CALL(pep_model_forward(m, b, 1, seed, loss));
    return pep_model_backward(m, groups);
}

/* Loss and gradient (groups) at the current parameters. */
int maml_loss_grad(struct pep_model *m, const struct pep_batch *b, uint64_t seed, unsigned groups, float *loss)
{
    pep_model_zero_grad(m, groups);
    return add_grad(m, b, seed, groups, loss);
}

/* Over the rows of [b, e) the model's gradient can be non-zero (pep_model_grad_span: the
 * word-embedding rows of tokens the passes did not see are zero and skipped): gr = -gr
 * (dst NULL) or dst += s gr. */
PEP_DISPATCH
static void grad_rows(const struct pep_model *m, size_t b, size_t e, float *dst, float s)
{
    for (size_t i = b, end; (i = pep_model_grad_span(m, i, e, &end)) < e; i = end) {
        float *restrict d = dst ? dst + i : NULL, *restrict g = m->grads + i;
        size_t n = end - i;
        if (!d) {
#pragma omp simd
            for (size_t r = 0; r < n; r++) g[r] = -g[r];
        } else {
#pragma omp simd
            for (size_t r = 0; r < n; r++) d[r] += s * g[r];
        }
    }
}

/* The finite-difference HVP of inner step j, folded into the adjoints:
 *   h = (grad L_S(phi_j + e v) - grad L_S(phi_j - e v)) / 2e,  g_theta -= a h_theta,  v -= a h_phi,
 * on the same support batch with the same dropout masks as the inner step. The difference is
 * formed in the model's gradient block itself (backward accumulates): zero, + pass, negate,
 * - pass, so no second gradient block is needed and the - pass needs no zeroing. Only the
 * blocks read afterwards are computed: theta (O outside I) always; v for all of I while
 * j > 0, but at j = 0 only its meta-learned rows I n O (the gradient of phi_0), so at j = 0
 * both passes take gradients for O alone. Both passes replay the ReLU pattern of the inner
 * step's forward at phi_j (if any): h is then the HVP autograd gives (ReLU'' = 0), also when a
 * unit's pre-activation lies within the +-e v interval of its kink. */
static int hvp_step(struct pep_maml *mm, const struct pep_batch *support, uint64_t seed, int j)
{
    struct pep_model *m = mm->m;
    const struct pep_maml_opts *o = &mm->o;
    size_t nin = mm->n_in;
    float *w = m->params + mm->in_b, *gr = m->grads;
    const float *pj = mm->phi + (size_t)j * nin;
    /* per-group rates A = a_ref diag(r): the step's Jacobian needs H (A v) = a_ref H u, u = r v */
    const float *u = mm->v;
    if (mm->u) {
        for (int sg = 0; sg < mm->nseg; sg++) {
            const struct inner_seg *q = &mm->seg[sg];
            float r = q->r.lr / mm->a_ref;
            for (size_t i = q->b; i < q->e; i++) mm->u[i] = r * mm->v[i];
        }
        u = mm->u;
    }
    double vn = 0.0;
    for (size_t i = 0; i < nin; i++) vn += (double)u[i] * u[i];
    vn = sqrt(vn);
    float scale = 1.0f / (float)o->meta_batch;
    if (vn == 0.0) { /* H 0 = 0; at j = 0 the adjoints are the meta-gradient as they stand */
        if (j > 0 || o->group_sum) return PEP_OK; /* task groups: maml_task finishes them */
        maml_final_begin(mm, FIN_ADJOINT, mm->out_b, mm->out_e, scale, 0.0f);
        return maml_final_end(mm);
    }
    float e = (float)(o->fd_eps / vn), l2;
    unsigned need = j > 0 ? (o->inner | o->outer) : o->outer;
    size_t nb, ne;
    PEP_CALL(pep_param_table_range(&m->table, need, &nb, &ne));
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_REPLAY, mm->relu ? mm->relu + (size_t)j * mm->relu_words : NULL);
    for (size_t i = 0; i < nin; i++) w[i] = pj[i] + e * u[i];
    int rc = maml_loss_grad(m, support, seed, need, &l2);
    if (rc == PEP_OK) {
        grad_rows(m, nb, ne, NULL, 0.0f);
        for (size_t i = 0; i < nin; i++) w[i] = pj[i] - e * u[i];
    }
    /* gr = grad(-) - grad(+) = -2e h over the rows of `need`, so x -= a h is x += s gr */
    float s = mm->a_ref / (2.0f * e);
    if (j == 0 && !o->group_sum) { /* the task's last pass: each row's adjoint step and meta-gradient as the backward finishes it */
        if (rc != PEP_OK) pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
        PEP_CALL(rc);
        maml_final_begin(mm, FIN_HVP, mm->out_b, mm->out_e, scale, s);
        rc = add_grad(m, support, seed, need, &l2);
        pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
        PEP_CALL(rc);
        return maml_final_end(mm);
    }
    if (rc == PEP_OK) rc = add_grad(m, support, seed, need, &l2);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
    size_t vb = mm->in_b > nb ? mm->in_b : nb, ve = mm->in_e < ne ? mm->in_e : ne;
    /* task groups: v's rows become the whole support batch's, theta's stay this rank's share
     * (maml_task turns the adjoints into meta-gradient after the j = 0 step) */
    PEP_CALL(group_sum(mm, rc, gr + vb, ve > vb ? ve - vb : 0, mm->ws));
    float st = s * mm->ws;
    /* g on O outside I: the parts of [out_b, out_e) below and above [in_b, in_e) */
    size_t ob = mm->out_b, oe = mm->out_e;
    grad_rows(m, ob, mm->in_b < oe ? (mm->in_b > ob ? mm->in_b : ob) : oe, mm->g, st);
    grad_rows(m, mm->in_e > ob ? (mm->in_e < oe ? mm->in_e : oe) : ob, oe, mm->g, st);
    for (size_t i = vb; i < ve; i++) mm->v[i - mm->in_b] += s * gr[i];
    return PEP_OK;
}

/* phi_0 of a task: PLM members of I are always the meta parameters; the PE/head members start
 * from the meta values (pe_init = meta), the fixed fresh init, or a draw of the model's own
 * initialiser (the one fine-tuning's fresh modules come from) seeded by this task's seed. */
void maml_inner_start(struct pep_maml *mm, uint64_t seed)
{
    struct pep_model *m = mm->m;
    unsigned fresh_groups = mm->o.inner & ~PEP_GROUP_BIT(PEP_GROUP_PLM);
    size_t fb, fe;
    if (mm->o.pe_init == PEP_MAML_PE_INIT_META || !fresh_groups || pep_param_table_range(&m->table, fresh_groups, &fb, &fe) != PEP_OK)
        return;
    if (mm->o.pe_init == PEP_MAML_PE_INIT_EPISODE)
        pep_model_init_weights(m, pep_splitmix64(seed ^ 0x6a09e667f3bcc909ULL), fresh_groups);
    else
        memcpy(m->params + fb, mm->init + (fb - mm->in_b), (fe - fb) * sizeof(float));
}

/* Inner step j, group by group: pn = pj - step(gj) by each group's rule. SGD: a gj; Adam:
 * bias-corrected with moments restarted per task (j = 0), constant rate a; FINETUNE:
 * fine-tuning's optimizer (o->replay) at the rate of its step replay_start + j, the gradient
 * clipped by the PE + head norm as pep_optim_step clips it, decoupled weight decay, moments
 * restarted per task as at the start of fine-tuning. */
static void inner_update(struct pep_maml *mm, int j, const float *pj, const float *gj, float *pn)
{
    const struct pep_maml_opts *o = &mm->o;
    const struct pep_optim *ft = &o->replay;
    float clip = 1.0f, ft_lr = 0.0f;
    for (int sg = 0; sg < mm->nseg; sg++)
        if (mm->seg[sg].r.optim == PEP_MAML_INNER_FINETUNE) {
            double norm = 0.0;
            for (int q = 0; q < mm->nseg; q++)
                if (mm->seg[q].group != PEP_GROUP_PLM) norm += pow(pep_grad_norm(gj, mm->seg[q].b, mm->seg[q].e), 2);
            norm = sqrt(norm);
            if (ft->clip > 0.0f && norm > ft->clip) clip = (float)(ft->clip / (norm + 1e-6));
            ft_lr = pep_optim_lr_at(ft, o->replay_start + j);
            break;
        }
    if (j == 0 && mm->am) {
        memset(mm->am, 0, mm->n_in * sizeof(float));
        memset(mm->av, 0, mm->n_in * sizeof(float));
    }
    for (int sg = 0; sg < mm->nseg; sg++) {
        const struct inner_seg *q = &mm->seg[sg];
        size_t b = q->b, e = q->e;
        float a = q->r.lr;
        if (q->r.optim == PEP_MAML_INNER_SGD) {
            for (size_t i = b; i < e; i++) pn[i] = pj[i] - a * gj[i];
        } else if (q->r.optim == PEP_MAML_INNER_ADAM) {
            float b1 = o->beta1, b2 = o->beta2;
            float c1 = 1.0f - powf(b1, (float)(j + 1)), c2 = 1.0f - powf(b2, (float)(j + 1));
            for (size_t i = b; i < e; i++) {
                mm->am[i] = b1 * mm->am[i] + (1.0f - b1) * gj[i];
                mm->av[i] = b2 * mm->av[i] + (1.0f - b2) * gj[i] * gj[i];
                pn[i] = pj[i] - a * (mm->am[i] / c1) / (sqrtf(mm->av[i] / c2) + o->adam_eps);
            }
        } else if (ft->kind == PEP_OPTIM_KIND_SGD) {
            for (size_t i = b; i < e; i++) pn[i] = pj[i] - ft_lr * clip * gj[i];
        } else { /* pep_optim_step's AdamW, term for term */
            float b1 = ft->beta1, b2 = ft->beta2, wd = ft->weight_decay, eps = ft->eps;
            float c1 = 1.0f - powf(b1, (float)(j + 1)), c2 = 1.0f - powf(b2, (float)(j + 1));
            for (size_t i = b; i < e; i++) {
                float gi = gj[i] * clip;
                float m = mm->am[i] = b1 * mm->am[i] + (1.0f - b1) * gi;
                float v = mm->av[i] = b2 * mm->av[i] + (1.0f - b2) * gi * gi;
                float mhat = m / c1, vhat = v / c2;
                pn[i] = pj[i] - ft_lr * (mhat / (sqrtf(vhat) + eps) + wd * pj[i]);
            }
        }
    }
}

/* meta[O] += scale * gth outside I and inner_scale * (the gradient of phi_0) on O n I (0 on the
 * ranks of a task group but its lead), as three branch-free ranges so the loops vectorise (O
 * spans the whole encoder: 7 M floats at the tiny shape). */
static void accumulate_meta(struct pep_maml *mm, const float *gth, float scale, float inner_scale)
{
    size_t ob = mm->out_b, oe = mm->out_e;
    size_t ib = mm->in_b > ob ? mm->in_b : ob, ie = mm->in_e < oe ? mm->in_e : oe;
    if (ib > ie) ib = ie = oe; /* I and O do not overlap */
    maml_meta_put(mm, ob, ib, gth + ob, scale);
    maml_meta_put(mm, ib, ie, mm->v + (ib - mm->in_b), inner_scale);
    maml_meta_put(mm, ie, oe, gth + ie, scale);
    mm->meta_fresh = 0;
}

static int maml_task(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query, uint64_t seed,
                     struct pep_maml_task_result *res)
{
    struct pep_model *m = mm->m;
    const struct pep_maml_opts *o = &mm->o;
    size_t nin = mm->n_in;
    float *w = m->params, *gr = m->grads;
    int k = o->inner_steps, rc = PEP_OK;
    unsigned all = o->inner | o->outer;

    memcpy(mm->restore, w + mm->in_b, nin * sizeof(float));
    maml_inner_start(mm, seed);
    memcpy(mm->phi, w + mm->in_b, nin * sizeof(float));

    /* inner loop: phi_{j+1} = phi_j - a grad_phi L_S(theta, phi_j) */
    float ls = 0.0f, lq = 0.0f;
    for (int j = 0; j < k; j++) {
        pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_RECORD, mm->relu ? mm->relu + (size_t)j * mm->relu_words : NULL);
        int lrc = maml_loss_grad(m, support, maml_pass_seed(seed, j), o->inner, &ls);
        pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
        PEP_CALL_GOTO(rc, group_sum(mm, lrc, gr + mm->in_b, nin, mm->ws));
        float *pj = mm->phi + (size_t)j * nin, *pn = mm->phi + (size_t)(j + 1) * nin;
        const float *gj = gr + mm->in_b;
        inner_update(mm, j, pj, gj, pn);
        memcpy(w + mm->in_b, pn, nin * sizeof(float));
    }
    /* query: v = grad_phi L_Q(theta, phi_k), g = grad_theta L_Q; first order without task
     * groups: the task's last pass, so its rows become meta-gradient (theta from g, the inner
     * part from v = the same gradient) as the backward finishes them. Task groups sum v over the
     * group first, so they write the meta-gradient after the passes (accumulate_meta below). */
    float scale = 1.0f / (float)o->meta_batch;
    int fin = o->order == 1 && !o->group_sum;
    if (fin) maml_final_begin(mm, FIN_GRAD, mm->out_b, mm->out_e, scale, 0.0f);
    int lrc = maml_loss_grad(m, query, maml_pass_seed(seed, k), all, &lq);
    if (lrc == PEP_OK && fin) lrc = maml_final_end(mm);
    if (lrc == PEP_OK && !isfinite(lq))
        lrc = pep_error_set(PEP_ERR_NUMERIC, __FILE__, __LINE__, __func__, "non-finite query loss");
    PEP_CALL_GOTO(rc, group_sum(mm, lrc, gr + mm->in_b, nin, mm->wq));
    memcpy(mm->v, gr + mm->in_b, nin * sizeof(float));
    /* theta's rows: this rank's share of the query batch (wq = 1 without a group) */
    if (o->order == 2)
        for (size_t i = mm->out_b; i < mm->out_e; i++) mm->g[i] = mm->wq * gr[i];

    /* second order: the meta-gradient of O (theta part from g, inner part from v, the gradient
     * of phi_0) is finished by the j = 0 step's last pass */
    if (o->order == 2)
        for (int j = k - 1; j >= 0; j--) PEP_CALL_GOTO(rc, hvp_step(mm, support, maml_pass_seed(seed, j), j));
    /* task groups: theta's rows are this rank's share; the rows of I n O hold the group's sum on
     * every rank of the group, so its lead alone adds them */
    if (o->group_sum)
        accumulate_meta(mm, o->order == 2 ? mm->g : gr, o->order == 2 ? scale : scale * mm->wq,
                        o->group_lead ? scale : 0.0f);
    PEP_CALL_GOTO(rc, maml_group_losses(mm, PEP_OK, &ls, &lq));
    res->support_loss = ls;
    res->query_loss = lq;
    /* the adapted state is phi_k as the inner loop left it: under order 2 the live weights now
     * hold phi_0 - e v from the last finite-difference pass, so they must not be read back */
    res->adapted = mm->phi + (size_t)k * nin;
    res->start = mm->phi;
cleanup:
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
    memcpy(w + mm->in_b, mm->restore, nin * sizeof(float));
    return rc;
}

int pep_maml_task(struct pep_maml *mm, const struct pep_batch *support, const struct pep_batch *query, uint64_t seed,
                  struct pep_maml_task_result *res)
{
    int rc = group_weights(mm, support, query);
    if (rc == PEP_OK)
        rc = mm->o.method == PEP_MAML_METHOD_MULTITASK           ? maml_multitask_task(mm, support, query, seed, res)
             : mm->o.method == PEP_MAML_METHOD_MULTITASK_MATCHED ? maml_multitask_matched_task(mm, query, seed, res)
                                                                 : maml_task(mm, support, query, seed, res);
    /* task groups write the meta-gradient after their group sums: the whole range is final now */
    if (rc == PEP_OK && mm->o.group_sum && mm->ready) rc = mm->ready(mm->up_b, mm->up_e, mm->ready_ud);
    /* the ready callback serves one task, also one that failed half way */
    pep_model_set_grad_ready(mm->m, NULL, NULL);
    pep_maml_set_ready(mm, NULL, NULL);
    return rc;
}

int pep_maml_outer_step(struct pep_maml *mm, struct pep_optim *opt, int (*reduce)(float *g, size_t n, void *ud),
                        void *ud, double *gnorm)
{
    meta_settle(mm);
    if (reduce) PEP_CALL(reduce(mm->meta + mm->up_b, mm->up_e - mm->up_b, ud));
    PEP_CHECK(opt->begin == mm->up_b && opt->end == mm->up_e, PEP_ERR_INTERNAL,
              "optimizer range [%zu, %zu) does not match the MAML update range [%zu, %zu)", opt->begin, opt->end,
              mm->up_b, mm->up_e);
    return pep_optim_step(opt, mm->m->params, mm->meta, gnorm);
}
