/* The encoder's forward and backward (model.h, formulas in docs/model.md); built by
 * model_create.c. A batch is its real tokens only (N rows, no padding); attention runs per
 * sequence. Backward accumulates only into the groups it is asked for. Also the two
 * re-parameterisations that fold PE modules into plain weights (eject, merge). */
#include "model/model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "layers/layers.h"
#include "model/model_state.h"

/* Dropout sites: one id per place a mask is drawn, so masks never coincide. */
#define SITE_EMB 1u
#define SITE_HEAD 2u
#define SITE_LAYER(l, k) (100u + 10u * (unsigned)(l) + (k))

static inline float *W(const struct pep_model *m, int idx) { return idx < 0 ? NULL : m->params + m->table.rows[idx].offset; }
/* gradient slot of a row, or NULL when its group is not being trained */
static inline float *G(const struct pep_model *m, int idx, unsigned groups)
{
    if (idx < 0 || !(groups & PEP_GROUP_BIT(m->table.rows[idx].group))) return NULL;
    return m->grads + m->table.rows[idx].offset;
}

void pep_model_zero_grad(struct pep_model *m, unsigned groups)
{
    struct pep_model_state *st = m->state;
    for (int g = 0; g < PEP_GROUP_COUNT; g++) {
        if (!(groups & PEP_GROUP_BIT(g))) continue;
        size_t b = m->table.group_begin[g], e = m->table.group_end[g];
        if (g != PEP_GROUP_PLM) {
            memset(m->grads + b, 0, (e - b) * sizeof(float));
            continue;
        }
        /* the word-embedding gradient is (V, C) but a batch touches few rows: zero only those */
        const struct pep_param *w = &m->table.rows[st->wte];
        memset(m->grads + b, 0, (w->offset - b) * sizeof(float));
        memset(m->grads + w->offset + w->numel, 0, (e - w->offset - w->numel) * sizeof(float));
        size_t C = (size_t)m->spec.C;
        if (st->wte_all_dirty) memset(m->grads + w->offset, 0, w->numel * sizeof(float));
        else
            for (int v = 0; v < m->spec.V; v++)
                if (st->wte_dirty[v]) memset(m->grads + w->offset + (size_t)v * C, 0, C * sizeof(float));
        memset(st->wte_dirty, 0, (size_t)m->spec.V);
        st->wte_all_dirty = 0;
    }
}

size_t pep_model_grad_span(const struct pep_model *m, size_t begin, size_t end, size_t *span_end)
{
    const struct pep_model_state *st = m->state;
    const struct pep_param *w = &m->table.rows[st->wte];
    size_t wb = w->offset, we = w->offset + w->numel, C = (size_t)m->spec.C, V = (size_t)m->spec.V;
    *span_end = end;
    if (begin >= end) return end;
    if (begin < wb || begin >= we || st->wte_all_dirty) {
        if (begin < wb && end > wb && !st->wte_all_dirty) *span_end = wb;
        return begin;
    }
    size_t r = (begin - wb) / C;
    while (r < V && !st->wte_dirty[r]) r++;
    if (r == V) return we < end ? pep_model_grad_span(m, we, end, span_end) : end;
    size_t start = begin > wb + r * C ? begin : wb + r * C, r2 = r;
    while (r2 < V && st->wte_dirty[r2]) r2++;
    if (start >= end) return end;
    *span_end = wb + r2 * C < end ? wb + r2 * C : end;
    return start;
}

/* Adapters with a ReLU: how many sites (1 or 2 per layer), and the pattern words of one site. */
static int relu_sites(const struct pep_model_spec *s)
{
    if (s->pe != PEP_PE_METHOD_ADAPTER || s->adapter_act != PEP_ACTIVATION_RELU) return 0;
    return s->L * (s->placement == PEP_ADAPTER_PLACEMENT_HOULSBY ? 2 : 1);
}

size_t pep_model_relu_pattern_words(const struct pep_model *m, int N)
{
    return (size_t)relu_sites(&m->spec) * relu_pattern_words((size_t)N * m->spec.bottleneck);
}

void pep_model_set_relu_pattern(struct pep_model *m, enum pep_relu_pattern mode, uint64_t *bits)
{
    int on = relu_sites(&m->spec) > 0 && bits;
    m->state->relu_mode = on ? mode : PEP_RELU_PATTERN_OWN;
    m->state->relu_bits = on ? bits : NULL;
}

/* Word offset of layer l's attention (ad 0, Houlsby) or output (ad 1) adapter pattern. */
static size_t relu_site(const struct pep_model *m, int l, int ad, int N)
{
    const struct pep_model_spec *s = &m->spec;
    int site = s->placement == PEP_ADAPTER_PLACEMENT_HOULSBY ? 2 * l + ad : l;
    return (size_t)site * relu_pattern_words((size_t)N * s->bottleneck);
}

void pep_model_grads_written(struct pep_model *m, size_t begin, size_t end)
{
    const struct pep_param *w = &m->table.rows[m->state->wte];
    if (begin < w->offset + w->numel && end > w->offset) m->state->wte_all_dirty = 1;
}

const float *pep_model_logits(const struct pep_model *m) { return m->state->logits; }
int pep_model_ntargets(const struct pep_model *m) { return m->state->ntargets; }

static void add_into(float *dst, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

/* Per-layer prefix keys/values: flat parameters, or the reparameterisation MLP's output (layers/prefix.c). */
static void prefix_forward(struct pep_model *m)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    size_t P = (size_t)s->prefix_len, C = (size_t)s->C;
    if (!s->prefix_reparam) {
        for (int l = 0; l < s->L; l++) {
            memcpy(st->pk + l * P * C, W(m, st->lid[l].pk), P * C * sizeof(float));
            memcpy(st->pv + l * P * C, W(m, st->lid[l].pv), P * C * sizeof(float));
        }
        return;
    }
    prefix_mlp_forward(st->pk, st->pv, st->kv, st->pre_h, st->pre_act, W(m, st->pre_emb), W(m, st->pre_w0),
                       W(m, st->pre_b0), W(m, st->pre_w2), W(m, st->pre_b2), s->L, s->prefix_len, s->C, s->prefix_hidden);
}

int pep_model_forward(struct pep_model *m, const struct pep_batch *b, int train, uint64_t dropout_seed, float *loss)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    PEP_CHECK(b->nseq >= 1 && b->nseq <= s->max_B && b->offsets && b->input_ids && b->offsets[0] == 0, PEP_ERR_USAGE,
              "batch of %d sequences (offsets[0] = %d): the model takes 1 to %d sequences, offsets starting at 0",
              b->nseq, b->nseq >= 1 && b->offsets ? b->offsets[0] : 0, s->max_B);
    for (int i = 0; i < b->nseq; i++) {
        int len = b->offsets[i + 1] - b->offsets[i];
        PEP_CHECK(len >= 1 && len <= s->max_T, PEP_ERR_USAGE,
                  "sequence %d of the batch has %d tokens; the model takes 1 to %d (model.max_seq_len)", i, len,
                  s->max_T);
    }
    int nseq = b->nseq, N = b->offsets[nseq], C = s->C, FF = s->FF, NH = s->NH;
    int P = s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0;
    int R = s->bottleneck, r = s->lora_rank;
    float scale_lora = s->lora_alpha / (float)(r > 0 ? r : 1);
    enum pep_activation ak = s->adapter_act;
    float pd = train ? s->dropout : 0.0f, pa = train ? s->attention_dropout : 0.0f;
    st->nseq = nseq, st->N = N, st->train = train, st->seed = dropout_seed, st->seq0 = b->seq0;
    st->relu_fwd = st->relu_mode == PEP_RELU_PATTERN_REPLAY ? st->relu_bits : NULL;
    uint64_t *relu_rec = st->relu_mode == PEP_RELU_PATTERN_RECORD ? st->relu_bits : NULL;
    memcpy(st->offsets, b->offsets, ((size_t)nseq + 1) * sizeof(int));
    for (int q = 0; q < nseq; q++)
        for (int i = b->offsets[q], t = 0; i < b->offsets[q + 1]; i++, t++) {
            int id = b->input_ids[i];
            PEP_CHECK(id >= 0 && id < s->V && id != PEP_PAD_ID, PEP_ERR_USAGE,
                      "token id %d at token %d of sequence %d is %s", id, t, q,
                      id == PEP_PAD_ID ? "<pad>: batches carry real tokens only, no padding"
                                       : "outside the vocabulary");
            st->ids[i] = id;
            st->labels[i] = b->labels ? b->labels[i] : PEP_IGNORE_INDEX;
            st->pos[i] = PEP_PAD_ID + 1 + t; /* fairseq / XLM-R positions: 2, 3, ... */
            st->rowkey[i] = ((uint64_t)b->seq0 + (uint64_t)q) * PEP_DROPOUT_STRIDE + (uint64_t)t;
        }
    embedding_forward(st->emb_sum, st->ids, st->pos, W(m, st->wte), W(m, st->wpe), W(m, st->wtt), N, C);
    float *x0 = st->acts[0].x;
    layernorm_forward(x0, st->emb_mean, st->emb_rstd, st->emb_sum, W(m, st->embw), W(m, st->embb), N, C, s->ln_eps);
    dropout_forward(x0, st->rowkey, N, C, pd, dropout_seed, SITE_EMB);
    if (P) prefix_forward(m);

    for (int l = 0; l < s->L; l++) {
        const struct layer_ids *li = &st->lid[l];
        struct layer_acts *la = &st->acts[l];
        float *xout = st->xs + (size_t)(l + 1) * s->max_B * s->max_T * C;
        size_t NC = (size_t)N * C;
        linear_forward(st->pool, la->qkv, la->x, W(m, li->wq), W(m, li->bq), N, C, 3 * C, C, 3 * C);
        if (li->qa >= 0) {
            lora_forward(la->qkv, la->xa_q, la->x, W(m, li->qa), W(m, li->qb), N, C, C, r, scale_lora, C, 3 * C);
            lora_forward(la->qkv + 2 * C, la->xa_v, la->x, W(m, li->va), W(m, li->vb), N, C, C, r, scale_lora, C, 3 * C);
        }
        attention_forward(st->pool, la->ctx, la->att, la->qkv, P ? st->pk + (size_t)l * P * C : NULL,
                          P ? st->pv + (size_t)l * P * C : NULL, st->offsets, nseq, st->seq0, C, NH, P, pa, dropout_seed,
                          SITE_LAYER(l, 1), st->att_scratch, st->att_stride);
        linear_forward(st->pool, la->ao, la->ctx, W(m, li->wo), W(m, li->bo), N, C, C, C, C);
        dropout_forward(la->ao, st->rowkey, N, C, pd, dropout_seed, SITE_LAYER(l, 2));
        const float *att_branch = la->ao;
        if (li->att_ad.wd >= 0) {
            adapter_forward(st->pool, la->ao_ad, la->ah_pre, la->ah_act, la->ao, W(m, li->att_ad.wd), W(m, li->att_ad.bd),
                            W(m, li->att_ad.wu), W(m, li->att_ad.bu), N, C, R, ak,
                            st->relu_fwd ? st->relu_fwd + relu_site(m, l, 0, N) : NULL);
            if (relu_rec) relu_pattern_record(relu_rec + relu_site(m, l, 0, N), la->ah_pre, (size_t)N * R);
            att_branch = la->ao_ad;
        }
        add_into(la->ln1_in, att_branch, la->x, NC);
        layernorm_forward(la->x1, la->ln1_mean, la->ln1_rstd, la->ln1_in, W(m, li->ln1w), W(m, li->ln1b), N, C, s->ln_eps);
        linear_forward(st->pool, la->fc, la->x1, W(m, li->wi), W(m, li->bi), N, C, FF, C, FF);
        activation_forward(la->fc_act, la->fc, (size_t)N * FF, PEP_ACTIVATION_GELU);
        linear_forward(st->pool, la->oo, la->fc_act, W(m, li->wout), W(m, li->bout), N, FF, C, FF, C);
        dropout_forward(la->oo, st->rowkey, N, C, pd, dropout_seed, SITE_LAYER(l, 3));
        const float *out_branch = la->oo;
        if (li->out_ad.wd >= 0) {
            adapter_forward(st->pool, la->oo_ad, la->oh_pre, la->oh_act, la->oo, W(m, li->out_ad.wd), W(m, li->out_ad.bd),
                            W(m, li->out_ad.wu), W(m, li->out_ad.bu), N, C, R, ak,
                            st->relu_fwd ? st->relu_fwd + relu_site(m, l, 1, N) : NULL);
            if (relu_rec) relu_pattern_record(relu_rec + relu_site(m, l, 1, N), la->oh_pre, (size_t)N * R);
            out_branch = la->oo_ad;
        }
        add_into(la->ln2_in, out_branch, la->x1, NC);
        layernorm_forward(xout, la->ln2_mean, la->ln2_rstd, la->ln2_in, W(m, li->ln2w), W(m, li->ln2b), N, C, s->ln_eps);
        if (l + 1 < s->L) st->acts[l + 1].x = xout;
    }
    const float *xL = st->xs + (size_t)s->L * s->max_B * s->max_T * C;
    double total;
    int count;
    if (s->head == PEP_HEAD_KIND_TAGGER) {
        memcpy(st->hx, xL, (size_t)N * C * sizeof(float));
        dropout_forward(st->hx, st->rowkey, N, C, pd, dropout_seed, SITE_HEAD);
        linear_forward(st->pool, st->logits, st->hx, W(m, st->cls_w), W(m, st->cls_b), N, C, s->ntags, C, s->ntags);
        total = xent_forward(st->logits, st->labels, N, s->ntags, PEP_IGNORE_INDEX, &count);
        st->M = N;
    } else {
        /* the MLM head only runs on the positions that carry a label */
        int M = 0;
        for (int i = 0; i < N; i++)
            if (st->labels[i] != PEP_IGNORE_INDEX) {
                st->rows[M] = i;
                st->labels_g[M] = st->labels[i];
                memcpy(st->hx + (size_t)M * C, xL + (size_t)i * C, (size_t)C * sizeof(float));
                M++;
            }
        st->M = M;
        total = 0.0;
        count = 0;
        if (M > 0) {
            linear_forward(st->pool, st->lm_d, st->hx, W(m, st->lm_dw), W(m, st->lm_db), M, C, C, C, C);
            activation_forward(st->lm_g, st->lm_d, (size_t)M * C, PEP_ACTIVATION_GELU);
            layernorm_forward(st->lm_ln, st->lm_mean, st->lm_rstd, st->lm_g, W(m, st->lm_lnw), W(m, st->lm_lnb), M, C,
                              s->ln_eps);
            linear_forward(st->pool, st->logits, st->lm_ln, W(m, st->wte), W(m, st->lm_bias), M, C, s->V, C, s->V);
            total = xent_forward(st->logits, st->labels_g, M, s->V, PEP_IGNORE_INDEX, &count);
        }
    }
    st->ntargets = count;
    st->loss = count ? (float)(total / count) : 0.0f;
    *loss = st->loss;
    PEP_CHECK(isfinite(st->loss), PEP_ERR_NUMERIC, "non-finite loss (%g) in the forward pass", (double)st->loss);
    return PEP_OK;
}

void pep_model_set_grad_ready(struct pep_model *m, pep_grad_ready_fn fn, void *ud)
{
    m->grad_ready = fn;
    m->grad_ready_ud = fn ? ud : NULL;
}

/* Reports rows r0 .. r1 (table indices, one group, contiguous) to the layer-done callback when
 * the pass computes their group. */
static int ready_rows(const struct pep_model *m, int r0, int r1, unsigned groups)
{
    if (!m->grad_ready || r0 < 0 || r1 < r0) return PEP_OK;
    const struct pep_param *a = &m->table.rows[r0], *b = &m->table.rows[r1];
    if (!(groups & PEP_GROUP_BIT(a->group))) return PEP_OK;
    return m->grad_ready(a->offset, b->offset + b->numel, m->grad_ready_ud);
}

/* Layer l's rows: its 16 encoder rows (wq .. ln2b) and its adapters or LoRA (prefix rows are
 * gathered from every layer, so they are reported after the loop). */
static int ready_layer(const struct pep_model *m, int l, unsigned groups)
{
    const struct layer_ids *li = &m->state->lid[l];
    PEP_CALL(ready_rows(m, li->wq, li->ln2b, groups));
    int pe0 = li->att_ad.wd >= 0 ? li->att_ad.wd : li->out_ad.wd >= 0 ? li->out_ad.wd : li->qa;
    int pe1 = li->out_ad.bu >= 0 ? li->out_ad.bu : li->vb;
    return ready_rows(m, pe0, pe1, groups);
}

int pep_model_backward(struct pep_model *m, unsigned groups)
{
    return pep_model_backward_share(m, groups, m->state->ntargets);
}

int pep_model_backward_share(struct pep_model *m, unsigned groups, int ntargets_total)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    int nseq = st->nseq, N = st->N, C = s->C, FF = s->FF, NH = s->NH;
    int P = s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0;
    int R = s->bottleneck, r = s->lora_rank;
    float scale_lora = s->lora_alpha / (float)(r > 0 ? r : 1);
    enum pep_activation ak = s->adapter_act;
    float pd = st->train ? s->dropout : 0.0f, pa = st->train ? s->attention_dropout : 0.0f;
    uint64_t seed = st->seed;
    size_t NC = (size_t)N * C;
    int need_plm = (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) != 0;
    int need_pe = (groups & PEP_GROUP_BIT(PEP_GROUP_PE)) != 0 && s->pe != PEP_PE_METHOD_NONE;
    int need_enc = need_plm || need_pe;
    if (st->ntargets == 0) return PEP_OK;
    PEP_CHECK(ntargets_total >= st->ntargets, PEP_ERR_USAGE,
              "backward of a batch with %d targets as a share of a loss over %d targets", st->ntargets, ntargets_total);
    float inv = 1.0f / (float)ntargets_total; /* d(loss)/d(each target's cross-entropy) */

    float *dx = st->dx;
    memset(dx, 0, NC * sizeof(float));
    if (s->head == PEP_HEAD_KIND_TAGGER) {
        xent_backward(st->dlogits, st->logits, st->labels, N, s->ntags, PEP_IGNORE_INDEX, inv);
        linear_backward(st->pool, need_enc ? dx : NULL, G(m, st->cls_w, groups), G(m, st->cls_b, groups), st->dlogits, st->hx,
                        W(m, st->cls_w), N, C, s->ntags, C, s->ntags);
        if (need_enc) dropout_backward(dx, st->rowkey, N, C, pd, seed, SITE_HEAD);
        PEP_CALL(ready_rows(m, st->cls_w, st->cls_b, groups));
    } else if (st->M > 0) {
        int M = st->M;
        size_t MC = (size_t)M * C;
        xent_backward(st->dlogits, st->logits, st->labels_g, M, s->V, PEP_IGNORE_INDEX, inv);
        memset(st->lm_dln, 0, MC * sizeof(float));
        memset(st->lm_dg, 0, MC * sizeof(float));
        memset(st->lm_dd, 0, MC * sizeof(float));
        memset(st->dhx, 0, MC * sizeof(float));
        linear_backward(st->pool, st->lm_dln, G(m, st->wte, groups), G(m, st->lm_bias, groups), st->dlogits, st->lm_ln,
                        W(m, st->wte), M, C, s->V, C, s->V);
        if (need_plm) st->wte_all_dirty = 1; /* the tied decoder writes every row */
        layernorm_backward(st->lm_dg, G(m, st->lm_lnw, groups), G(m, st->lm_lnb, groups), st->lm_dln, st->lm_g,
                           W(m, st->lm_lnw), st->lm_mean, st->lm_rstd, M, C);
        activation_backward(st->lm_dd, st->lm_d, st->lm_dg, MC, PEP_ACTIVATION_GELU);
        linear_backward(st->pool, need_enc ? st->dhx : NULL, G(m, st->lm_dw, groups), G(m, st->lm_db, groups), st->lm_dd, st->hx,
                        W(m, st->lm_dw), M, C, C, C, C);
        if (need_enc)
            for (int i = 0; i < M; i++) {
                float *d = dx + (size_t)st->rows[i] * C;
                const float *g = st->dhx + (size_t)i * C;
                for (int c = 0; c < C; c++) d[c] += g[c];
            }
        PEP_CALL(ready_rows(m, st->lm_dw, st->lm_bias, groups)); /* the tied decoder's wte rows come later */
    }
    if (!need_enc) return PEP_OK;

    if (P) {
        memset(st->dpk, 0, (size_t)s->L * P * C * sizeof(float));
        memset(st->dpv, 0, (size_t)s->L * P * C * sizeof(float));
    }
    float *dnext = st->dx_next, *dln = st->dtmp, *dbr = st->dtmp2;
    int unreported = s->L; /* layers l < unreported have not been reported final yet */
    for (int l = s->L - 1; l >= 0; l--) {
        const struct layer_ids *li = &st->lid[l];
        struct layer_acts *la = &st->acts[l];
        /* output LayerNorm: dx is the gradient at this layer's output */
        memset(dln, 0, NC * sizeof(float));
        layernorm_backward(dln, G(m, li->ln2w, groups), G(m, li->ln2b, groups), dx, la->ln2_in, W(m, li->ln2w),
                           la->ln2_mean, la->ln2_rstd, N, C);
        float *dx1 = dx; /* reuse: the residual carries dln into x1 */
        memcpy(dx1, dln, NC * sizeof(float));
        const float *doo = dln;
        if (li->out_ad.wd >= 0) {
            memset(dbr, 0, NC * sizeof(float));
            adapter_backward(st->pool, dbr, G(m, li->out_ad.wd, groups), G(m, li->out_ad.bd, groups), G(m, li->out_ad.wu, groups),
                             G(m, li->out_ad.bu, groups), dln, la->oo, la->oh_pre, la->oh_act, W(m, li->out_ad.wd),
                             W(m, li->out_ad.wu), N, C, R, ak,
                             st->relu_fwd ? st->relu_fwd + relu_site(m, l, 1, N) : NULL, st->ad_scratch);
            doo = dbr;
        } else if (pd > 0.0f) {
            memcpy(dbr, dln, NC * sizeof(float));
            doo = dbr;
        }
        /* Layer 0 with a frozen base and nothing trainable below its output adapter (no
         * attention adapter, LoRA or prefix): the rest of its backward would only produce
         * gradients nobody reads, so it stops here (as autograd does). */
        if (l == 0 && !need_plm && li->att_ad.wd < 0 && li->qa < 0 && P == 0) break;
        if (pd > 0.0f) dropout_backward((float *)doo, st->rowkey, N, C, pd, seed, SITE_LAYER(l, 3));
        linear_backward_set(st->pool, st->dfc_act, G(m, li->wout, groups), G(m, li->bout, groups), doo, la->fc_act,
                            W(m, li->wout), N, FF, C, FF, C);
        activation_backward_inplace(st->dfc_act, la->fc, (size_t)N * FF, PEP_ACTIVATION_GELU);
        linear_backward(st->pool, dx1, G(m, li->wi, groups), G(m, li->bi, groups), st->dfc_act, la->x1, W(m, li->wi), N, C, FF,
                        C, FF);
        /* attention LayerNorm */
        memset(dln, 0, NC * sizeof(float));
        layernorm_backward(dln, G(m, li->ln1w, groups), G(m, li->ln1b, groups), dx1, la->ln1_in, W(m, li->ln1w),
                           la->ln1_mean, la->ln1_rstd, N, C);
        memcpy(dnext, dln, NC * sizeof(float)); /* residual into the layer input */
        const float *dao = dln;
        if (li->att_ad.wd >= 0) {
            memset(dbr, 0, NC * sizeof(float));
            adapter_backward(st->pool, dbr, G(m, li->att_ad.wd, groups), G(m, li->att_ad.bd, groups), G(m, li->att_ad.wu, groups),
                             G(m, li->att_ad.bu, groups), dln, la->ao, la->ah_pre, la->ah_act, W(m, li->att_ad.wd),
                             W(m, li->att_ad.wu), N, C, R, ak,
                             st->relu_fwd ? st->relu_fwd + relu_site(m, l, 0, N) : NULL, st->ad_scratch);
            dao = dbr;
        } else if (pd > 0.0f) {
            memcpy(dbr, dln, NC * sizeof(float));
            dao = dbr;
        }
        /* the same below layer 0's attention adapter (Houlsby) when no prefix or LoRA sits under it */
        if (l == 0 && !need_plm && li->qa < 0 && P == 0) break;
        if (pd > 0.0f) dropout_backward((float *)dao, st->rowkey, N, C, pd, seed, SITE_LAYER(l, 2));
        float *dctx = dx; /* dx1 is consumed: reuse its storage */
        linear_backward_set(st->pool, dctx, G(m, li->wo, groups), G(m, li->bo, groups), dao, la->ctx, W(m, li->wo), N, C, C, C, C);
        /* q|k|v gradients feed the layer input and LoRA; layer 0 of a frozen base with prefixes
         * needs neither, only its prefix gradients */
        int need_dx_in = l > 0 || need_plm;
        float *dqkv = need_dx_in || li->qa >= 0 ? st->dqkv : NULL;
        if (dqkv) memset(dqkv, 0, NC * 3 * sizeof(float));
        attention_backward(st->pool, dqkv, P && need_pe ? st->dpk + (size_t)l * P * C : NULL,
                           P && need_pe ? st->dpv + (size_t)l * P * C : NULL, dctx, la->qkv,
                           P ? st->pk + (size_t)l * P * C : NULL, P ? st->pv + (size_t)l * P * C : NULL, la->att,
                           st->offsets, nseq, st->seq0, C, NH, P, pa, seed, SITE_LAYER(l, 1), st->att_scratch,
                           st->att_stride);
        if (!dqkv) break;
        if (li->qa >= 0) {
            lora_backward(need_dx_in ? dnext : NULL, G(m, li->qa, groups), G(m, li->qb, groups), st->dqkv, la->x,
                          la->xa_q, W(m, li->qa), W(m, li->qb), N, C, C, r, scale_lora, C, 3 * C, st->lora_scratch);
            lora_backward(need_dx_in ? dnext : NULL, G(m, li->va, groups), G(m, li->vb, groups), st->dqkv + 2 * C, la->x,
                          la->xa_v, W(m, li->va), W(m, li->vb), N, C, C, r, scale_lora, C, 3 * C, st->lora_scratch);
        }
        linear_backward(st->pool, need_dx_in ? dnext : NULL, G(m, li->wq, groups), G(m, li->bq, groups), st->dqkv, la->x,
                        W(m, li->wq), N, C, 3 * C, C, 3 * C);
        float *t = dx;
        dx = dnext;
        dnext = t;
        PEP_CALL(ready_layer(m, l, groups));
        unreported = l;
    }
    for (int l = unreported - 1; l >= 0; l--) PEP_CALL(ready_layer(m, l, groups)); /* the loop stopped early */
    if (need_plm) {
        dropout_backward(dx, st->rowkey, N, C, pd, seed, SITE_EMB);
        memset(dln, 0, NC * sizeof(float));
        layernorm_backward(dln, G(m, st->embw, groups), G(m, st->embb, groups), dx, st->emb_sum, W(m, st->embw),
                           st->emb_mean, st->emb_rstd, N, C);
        embedding_backward(G(m, st->wte, groups), G(m, st->wpe, groups), G(m, st->wtt, groups), dln, st->ids, st->pos,
                           N, C);
        for (int i = 0; i < N; i++) st->wte_dirty[st->ids[i]] = 1;
        PEP_CALL(ready_rows(m, st->wte, st->embb, groups));
    }
    if (P && need_pe) {
        size_t PC = (size_t)P * C;
        if (!s->prefix_reparam) {
            for (int l = 0; l < s->L; l++) {
                float *gk = G(m, st->lid[l].pk, groups), *gv = G(m, st->lid[l].pv, groups);
                for (size_t i = 0; i < PC; i++) gk[i] += st->dpk[l * PC + i], gv[i] += st->dpv[l * PC + i];
            }
        } else {
            prefix_mlp_backward(G(m, st->pre_emb, groups), G(m, st->pre_w0, groups), G(m, st->pre_b0, groups),
                                G(m, st->pre_w2, groups), G(m, st->pre_b2, groups), st->dkv, st->dpre, st->dpk, st->dpv,
                                W(m, st->pre_emb), W(m, st->pre_w0), W(m, st->pre_w2), st->pre_h, st->pre_act, s->L, P,
                                C, s->prefix_hidden);
        }
        if (s->prefix_reparam) PEP_CALL(ready_rows(m, st->pre_emb, st->pre_b2, groups));
        else PEP_CALL(ready_rows(m, st->lid[0].pk, st->lid[s->L - 1].pv, groups));
    }
    return PEP_OK;
}

/* Copies every row that exists in both models by name (same shape required). */
static int copy_by_name(struct pep_model *dst, const struct pep_model *src)
{
    for (int i = 0; i < dst->table.count; i++) {
        const struct pep_param *p = &dst->table.rows[i];
        int j = pep_param_table_find(&src->table, p->name);
        if (j < 0) continue;
        const struct pep_param *q = &src->table.rows[j];
        PEP_CHECK(q->numel == p->numel, PEP_ERR_INTERNAL, "%s: shape differs between models", p->name);
        memcpy(dst->params + p->offset, src->params + q->offset, p->numel * sizeof(float));
    }
    return PEP_OK;
}

int pep_model_eject_prefix(struct pep_model *m, struct pep_model **out)
{
    *out = NULL;
    const struct pep_model_spec *s = &m->spec;
    PEP_CHECK(s->pe == PEP_PE_METHOD_PREFIX && s->prefix_reparam, PEP_ERR_USAGE,
              "eject needs a prefix-tuned model with pe.prefix_reparam = true");
    struct pep_model_spec flat = *s;
    flat.prefix_reparam = 0;
    PEP_CALL(pep_model_create(&flat, out));
    int rc = copy_by_name(*out, m);
    if (rc) {
        pep_model_destroy(out);
        return rc;
    }
    prefix_forward(m); /* evaluate the MLP once */
    size_t PC = (size_t)s->prefix_len * s->C;
    for (int l = 0; l < s->L; l++) {
        memcpy(W(*out, (*out)->state->lid[l].pk), m->state->pk + l * PC, PC * sizeof(float));
        memcpy(W(*out, (*out)->state->lid[l].pv), m->state->pv + l * PC, PC * sizeof(float));
    }
    return PEP_OK;
}

int pep_model_merge_lora(struct pep_model *m, struct pep_model **out)
{
    *out = NULL;
    const struct pep_model_spec *s = &m->spec;
    PEP_CHECK(s->pe == PEP_PE_METHOD_LORA, PEP_ERR_USAGE, "merge needs a LoRA model (pe.method = lora)");
    struct pep_model_spec plain = *s;
    plain.pe = PEP_PE_METHOD_NONE;
    PEP_CALL(pep_model_create(&plain, out));
    int rc = copy_by_name(*out, m);
    if (rc) {
        pep_model_destroy(out);
        return rc;
    }
    int C = s->C, r = s->lora_rank;
    float scale = s->lora_alpha / (float)r;
    for (int l = 0; l < s->L; l++) {
        const struct layer_ids *li = &m->state->lid[l];
        float *wq = W(*out, (*out)->state->lid[l].wq); /* fused q|k|v: q rows then k then v */
        /* W += scale * B A, B (C, r), A (r, C) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, C, r, scale, W(m, li->qb), r, W(m, li->qa), C, 1.0f,
                    wq, C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, C, r, scale, W(m, li->vb), r, W(m, li->va), C, 1.0f,
                    wq + 2 * (size_t)C * C, C);
    }
    return PEP_OK;
}
