/* The encoder (model.h, formulas in docs/model.md): parameter table construction, seeded
 * initialisation, forward and backward. A batch is its real tokens only (N rows, no padding);
 * attention runs per sequence. Activations live in one arena sized for max_B * max_T tokens;
 * backward accumulates only into the groups it is asked for. */
#include "model/model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "layers/layers.h"

/* Dropout sites: one id per place a mask is drawn, so masks never coincide. */
#define SITE_EMB 1u
#define SITE_HEAD 2u
#define SITE_LAYER(l, k) (100u + 10u * (unsigned)(l) + (k))

struct adapter_ids {
    int wd, bd, wu, bu; /* -1 when absent */
};

struct layer_ids {
    int wq, bq, wo, bo, ln1w, ln1b, wi, bi, wout, bout, ln2w, ln2b; /* wq/bq start the fused q|k|v block */
    struct adapter_ids att_ad, out_ad;
    int pk, pv;           /* flat prefixes */
    int qa, qb, va, vb;   /* LoRA */
};

struct layer_acts {
    float *x;                 /* (N, C) layer input */
    float *qkv;               /* (N, 3C) */
    float *xa_q, *xa_v;       /* (N, r) LoRA */
    float *att;               /* per sequence b: (NH, L_b, P+L_b) */
    float *ctx, *ao, *ao_ad;  /* (N, C) */
    float *ah_pre, *ah_act;   /* (N, R) Houlsby attention adapter */
    float *ln1_in, *ln1_mean, *ln1_rstd, *x1;
    float *fc, *fc_act;       /* (N, FF) */
    float *oo, *oo_ad;        /* (N, C) */
    float *oh_pre, *oh_act;   /* (N, R) output adapter */
    float *ln2_in, *ln2_mean, *ln2_rstd;
};

struct pep_model_state {
    /* parameter row indices */
    int wte, wpe, wtt, embw, embb;
    struct layer_ids *lid;
    int cls_w, cls_b;                           /* tagger */
    int lm_dw, lm_db, lm_lnw, lm_lnb, lm_bias;  /* masked LM */
    int pre_emb, pre_w0, pre_b0, pre_w2, pre_b2; /* prefix MLP */

    /* last forward */
    int nseq, N, M, ntargets;
    int seq0;                       /* the batch's pep_batch.seq0 (dropout keys) */
    int *offsets; /* (nseq + 1) of the last batch */
    float loss;
    int train;
    uint64_t seed;
    int *ids, *pos, *labels, *rows; /* rows: gathered MLM positions */
    uint64_t *rowkey;               /* (N) dropout key of each row: sequence * PEP_DROPOUT_STRIDE + position */
    uint8_t *wte_dirty;             /* (V) rows of the word-embedding gradient written since the last zero */
    int wte_all_dirty;
    int *labels_g;
    float *emb_sum, *emb_mean, *emb_rstd;
    float *xs; /* (L + 1) slots of (N, C): layer inputs and the final output */
    struct layer_acts *acts;
    float *hx, *logits; /* tagger: (N, C), (N, K); MLM: (M, C), (M, V) */
    float *lm_d, *lm_g, *lm_ln, *lm_mean, *lm_rstd;
    float *pre_h, *pre_act, *kv;  /* prefix MLP: (P, H), (P, H), (P, 2LC) */
    float *pk, *pv;               /* (L, P, C) per-layer prefix keys / values in use */

    /* backward scratch */
    float *dx, *dx_next, *dtmp, *dtmp2, *dqkv, *dfc_act, *dlogits, *dhx, *att_scratch, *ad_scratch, *lora_scratch;
    float *dpk, *dpv, *dkv, *dpre;
    float *lm_dd, *lm_dg, *lm_dln;
};

static int act_kind(enum pep_activation a)
{
    return a == PEP_ACTIVATION_GELU ? PEP_ACT_KIND_GELU : a == PEP_ACTIVATION_SWISH ? PEP_ACT_KIND_SWISH : PEP_ACT_KIND_RELU;
}

int pep_model_spec_from_config(const struct pep_config *cfg, int vocab, int ntags, enum pep_head_kind head,
                               int max_B, struct pep_model_spec *spec)
{
    PEP_CALL(pep_config_validate(cfg));
    memset(spec, 0, sizeof *spec);
    spec->L = cfg->model.layers;
    spec->C = cfg->model.hidden;
    spec->NH = cfg->model.heads;
    spec->FF = cfg->model.ff;
    spec->V = cfg->model.vocab ? cfg->model.vocab : vocab;
    PEP_CHECK(spec->V >= 5, PEP_ERR_USAGE, "model vocabulary of %d is too small (set model.vocab or a tokenizer)", spec->V);
    spec->max_T = cfg->model.max_seq_len;
    spec->max_B = max_B;
    spec->max_positions = cfg->model.max_positions ? cfg->model.max_positions : cfg->model.max_seq_len + 2;
    spec->type_vocab = cfg->model.type_vocab;
    spec->ntags = ntags;
    spec->ln_eps = cfg->model.layer_norm_eps;
    spec->dropout = cfg->model.dropout;
    spec->attention_dropout = cfg->model.attention_dropout;
    spec->init_std = cfg->model.init_std;
    spec->head = head;
    const char *m = cfg->pe.method;
    spec->pe = !strcmp(m, "adapter") ? PEP_PE_METHOD_ADAPTER
             : !strcmp(m, "prefix")  ? PEP_PE_METHOD_PREFIX
             : !strcmp(m, "lora")    ? PEP_PE_METHOD_LORA
                                     : PEP_PE_METHOD_NONE;
    spec->placement = !strcmp(cfg->pe.placement, "houlsby") ? PEP_ADAPTER_PLACEMENT_HOULSBY : PEP_ADAPTER_PLACEMENT_PFEIFFER;
    spec->adapter_act = !strcmp(cfg->pe.activation, "gelu")    ? PEP_ACTIVATION_GELU
                      : !strcmp(cfg->pe.activation, "swish")   ? PEP_ACTIVATION_SWISH
                                                               : PEP_ACTIVATION_RELU;
    spec->bottleneck = cfg->model.hidden / cfg->pe.reduction;
    spec->prefix_len = cfg->pe.prefix_length;
    spec->prefix_reparam = cfg->pe.prefix_reparam;
    spec->prefix_hidden = cfg->pe.prefix_hidden;
    spec->lora_rank = cfg->pe.lora_rank;
    spec->lora_alpha = cfg->pe.lora_alpha;
    return PEP_OK;
}

static int add(struct pep_model *m, const char *name, enum pep_group g, int ndim, size_t d0, size_t d1, int *idx)
{
    return pep_param_table_add(&m->table, name, g, ndim, d0, d1, idx);
}

static int add_adapter(struct pep_model *m, const char *prefix, struct adapter_ids *a)
{
    const struct pep_model_spec *s = &m->spec;
    char n[PEP_PARAM_NAME_MAX];
    snprintf(n, sizeof n, "%s.adapter_down.weight", prefix);
    PEP_CALL(add(m, n, PEP_GROUP_PE, 2, (size_t)s->bottleneck, (size_t)s->C, &a->wd));
    snprintf(n, sizeof n, "%s.adapter_down.bias", prefix);
    PEP_CALL(add(m, n, PEP_GROUP_PE, 1, (size_t)s->bottleneck, 0, &a->bd));
    snprintf(n, sizeof n, "%s.adapter_up.weight", prefix);
    PEP_CALL(add(m, n, PEP_GROUP_PE, 2, (size_t)s->C, (size_t)s->bottleneck, &a->wu));
    snprintf(n, sizeof n, "%s.adapter_up.bias", prefix);
    PEP_CALL(add(m, n, PEP_GROUP_PE, 1, (size_t)s->C, 0, &a->bu));
    return PEP_OK;
}

static int build_table(struct pep_model *m)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    size_t C = (size_t)s->C;
    char n[PEP_PARAM_NAME_MAX];
    PEP_CALL(add(m, "embeddings.word_embeddings.weight", PEP_GROUP_PLM, 2, (size_t)s->V, C, &st->wte));
    PEP_CALL(add(m, "embeddings.position_embeddings.weight", PEP_GROUP_PLM, 2, (size_t)s->max_positions, C, &st->wpe));
    PEP_CALL(add(m, "embeddings.token_type_embeddings.weight", PEP_GROUP_PLM, 2, (size_t)s->type_vocab, C, &st->wtt));
    PEP_CALL(add(m, "embeddings.LayerNorm.weight", PEP_GROUP_PLM, 1, C, 0, &st->embw));
    PEP_CALL(add(m, "embeddings.LayerNorm.bias", PEP_GROUP_PLM, 1, C, 0, &st->embb));
    static const char *const plm_rows[] = {
        "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
        "attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight", "output.dense.bias",
        "output.LayerNorm.weight", "output.LayerNorm.bias"};
    for (int l = 0; l < s->L; l++) {
        struct layer_ids *li = &st->lid[l];
        int idx[16];
        for (int r = 0; r < 16; r++) {
            const char *row = plm_rows[r];
            size_t d0 = C, d1 = 0;
            int nd = 1;
            if (strstr(row, "self.") && strstr(row, ".weight")) nd = 2, d1 = C;
            else if (!strcmp(row, "attention.output.dense.weight")) nd = 2, d1 = C;
            else if (!strcmp(row, "intermediate.dense.weight")) nd = 2, d0 = (size_t)s->FF, d1 = C;
            else if (!strcmp(row, "intermediate.dense.bias")) d0 = (size_t)s->FF;
            else if (!strcmp(row, "output.dense.weight")) nd = 2, d1 = (size_t)s->FF;
            snprintf(n, sizeof n, "encoder.layer.%d.%s", l, row);
            PEP_CALL(add(m, n, PEP_GROUP_PLM, nd, d0, d1, &idx[r]));
        }
        li->wq = idx[0];
        li->bq = idx[3];
        li->wo = idx[6], li->bo = idx[7], li->ln1w = idx[8], li->ln1b = idx[9];
        li->wi = idx[10], li->bi = idx[11], li->wout = idx[12], li->bout = idx[13], li->ln2w = idx[14], li->ln2b = idx[15];
    }
    if (s->head == PEP_HEAD_KIND_MLM) {
        /* the MLM head lives in `head`; its decoder is tied to the word embeddings */
    }
    /* group pe */
    for (int l = 0; l < s->L; l++) {
        struct layer_ids *li = &st->lid[l];
        li->att_ad = li->out_ad = (struct adapter_ids){-1, -1, -1, -1};
        li->pk = li->pv = li->qa = li->qb = li->va = li->vb = -1;
        if (s->pe == PEP_PE_METHOD_ADAPTER) {
            if (s->placement == PEP_ADAPTER_PLACEMENT_HOULSBY) {
                snprintf(n, sizeof n, "encoder.layer.%d.attention.output.adapter", l);
                PEP_CALL(add_adapter(m, n, &li->att_ad));
            }
            snprintf(n, sizeof n, "encoder.layer.%d.output.adapter", l);
            PEP_CALL(add_adapter(m, n, &li->out_ad));
        } else if (s->pe == PEP_PE_METHOD_PREFIX && !s->prefix_reparam) {
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.prefix_key", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, (size_t)s->prefix_len, C, &li->pk));
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.prefix_value", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, (size_t)s->prefix_len, C, &li->pv));
        } else if (s->pe == PEP_PE_METHOD_LORA) {
            size_t r = (size_t)s->lora_rank;
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.query.lora_A", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, r, C, &li->qa));
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.query.lora_B", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, C, r, &li->qb));
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.value.lora_A", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, r, C, &li->va));
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.value.lora_B", l);
            PEP_CALL(add(m, n, PEP_GROUP_PE, 2, C, r, &li->vb));
        }
    }
    st->pre_emb = st->pre_w0 = st->pre_b0 = st->pre_w2 = st->pre_b2 = -1;
    if (s->pe == PEP_PE_METHOD_PREFIX && s->prefix_reparam) {
        size_t H = (size_t)s->prefix_hidden, P = (size_t)s->prefix_len, out = 2 * (size_t)s->L * C;
        PEP_CALL(add(m, "prefix.embedding", PEP_GROUP_PE, 2, P, C, &st->pre_emb));
        PEP_CALL(add(m, "prefix.mlp.0.weight", PEP_GROUP_PE, 2, H, C, &st->pre_w0));
        PEP_CALL(add(m, "prefix.mlp.0.bias", PEP_GROUP_PE, 1, H, 0, &st->pre_b0));
        PEP_CALL(add(m, "prefix.mlp.2.weight", PEP_GROUP_PE, 2, out, H, &st->pre_w2));
        PEP_CALL(add(m, "prefix.mlp.2.bias", PEP_GROUP_PE, 1, out, 0, &st->pre_b2));
    }
    /* group head */
    st->cls_w = st->cls_b = st->lm_dw = st->lm_db = st->lm_lnw = st->lm_lnb = st->lm_bias = -1;
    if (s->head == PEP_HEAD_KIND_TAGGER) {
        PEP_CALL(add(m, "classifier.weight", PEP_GROUP_HEAD, 2, (size_t)s->ntags, C, &st->cls_w));
        PEP_CALL(add(m, "classifier.bias", PEP_GROUP_HEAD, 1, (size_t)s->ntags, 0, &st->cls_b));
    } else {
        PEP_CALL(add(m, "lm_head.dense.weight", PEP_GROUP_HEAD, 2, C, C, &st->lm_dw));
        PEP_CALL(add(m, "lm_head.dense.bias", PEP_GROUP_HEAD, 1, C, 0, &st->lm_db));
        PEP_CALL(add(m, "lm_head.layer_norm.weight", PEP_GROUP_HEAD, 1, C, 0, &st->lm_lnw));
        PEP_CALL(add(m, "lm_head.layer_norm.bias", PEP_GROUP_HEAD, 1, C, 0, &st->lm_lnb));
        PEP_CALL(add(m, "lm_head.bias", PEP_GROUP_HEAD, 1, (size_t)s->V, 0, &st->lm_bias));
    }
    return PEP_OK;
}

/* Activation arena: one allocation carved into buffers. */
struct arena {
    float *base;
    size_t used, cap;
};

static float *carve(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    float *p = a->base ? a->base + a->used : NULL;
    a->used += n;
    return p;
}

static void layout(struct pep_model *m, struct arena *a)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    size_t N = (size_t)s->max_B * s->max_T, C = (size_t)s->C, FF = (size_t)s->FF;
    size_t P = s->pe == PEP_PE_METHOD_PREFIX ? (size_t)s->prefix_len : 0;
    size_t R = s->pe == PEP_PE_METHOD_ADAPTER ? (size_t)s->bottleneck : 0;
    size_t r = s->pe == PEP_PE_METHOD_LORA ? (size_t)s->lora_rank : 0;
    size_t K = s->head == PEP_HEAD_KIND_TAGGER ? (size_t)s->ntags : (size_t)s->V;
    int houlsby = s->pe == PEP_PE_METHOD_ADAPTER && s->placement == PEP_ADAPTER_PLACEMENT_HOULSBY;
    st->emb_sum = carve(a, N * C);
    st->emb_mean = carve(a, N);
    st->emb_rstd = carve(a, N);
    st->xs = carve(a, (size_t)(s->L + 1) * N * C);
    for (int l = 0; l < s->L; l++) {
        struct layer_acts *la = &st->acts[l];
        la->x = st->xs ? st->xs + (size_t)l * N * C : NULL;
        la->qkv = carve(a, N * 3 * C);
        la->xa_q = r ? carve(a, N * r) : NULL;
        la->xa_v = r ? carve(a, N * r) : NULL;
        la->att = carve(a, (size_t)s->max_B * s->NH * s->max_T * (s->max_T + P));
        la->ctx = carve(a, N * C);
        la->ao = carve(a, N * C);
        la->ao_ad = houlsby ? carve(a, N * C) : NULL;
        la->ah_pre = houlsby ? carve(a, N * R) : NULL;
        la->ah_act = houlsby ? carve(a, N * R) : NULL;
        la->ln1_in = carve(a, N * C);
        la->ln1_mean = carve(a, N);
        la->ln1_rstd = carve(a, N);
        la->x1 = carve(a, N * C);
        la->fc = carve(a, N * FF);
        la->fc_act = carve(a, N * FF);
        la->oo = carve(a, N * C);
        la->oo_ad = R ? carve(a, N * C) : NULL;
        la->oh_pre = R ? carve(a, N * R) : NULL;
        la->oh_act = R ? carve(a, N * R) : NULL;
        la->ln2_in = carve(a, N * C);
        la->ln2_mean = carve(a, N);
        la->ln2_rstd = carve(a, N);
    }
    st->hx = carve(a, N * C);
    st->logits = carve(a, N * K);
    st->dlogits = carve(a, N * K);
    if (s->head == PEP_HEAD_KIND_MLM) {
        st->lm_d = carve(a, N * C);
        st->lm_g = carve(a, N * C);
        st->lm_ln = carve(a, N * C);
        st->lm_mean = carve(a, N);
        st->lm_rstd = carve(a, N);
        st->lm_dd = carve(a, N * C);
        st->lm_dg = carve(a, N * C);
        st->lm_dln = carve(a, N * C);
    }
    if (P) {
        st->pk = carve(a, (size_t)s->L * P * C);
        st->pv = carve(a, (size_t)s->L * P * C);
        st->dpk = carve(a, (size_t)s->L * P * C);
        st->dpv = carve(a, (size_t)s->L * P * C);
        if (s->prefix_reparam) {
            size_t H = (size_t)s->prefix_hidden;
            st->pre_h = carve(a, P * H);
            st->pre_act = carve(a, P * H);
            st->kv = carve(a, P * 2 * s->L * C);
            st->dkv = carve(a, P * 2 * s->L * C);
            st->dpre = carve(a, 2 * P * H);
        }
    }
    st->dx = carve(a, N * C);
    st->dx_next = carve(a, N * C);
    st->dtmp = carve(a, N * C);
    st->dtmp2 = carve(a, N * C);
    st->dhx = carve(a, N * C);
    st->dqkv = carve(a, N * 3 * C);
    st->dfc_act = carve(a, N * FF);
    st->att_scratch = carve(a, attention_scratch_floats(s->max_T, (int)P));
    st->ad_scratch = R ? carve(a, 2 * N * R) : NULL;
    st->lora_scratch = r ? carve(a, N * r) : NULL;
}

int pep_model_create(const struct pep_model_spec *spec, struct pep_model **out)
{
    *out = NULL;
    const struct pep_model_spec *s = spec;
    PEP_CHECK(s->L >= 1 && s->C >= 1 && s->NH >= 1 && s->C % s->NH == 0 && s->FF >= 1 && s->V >= 1,
              PEP_ERR_USAGE, "invalid model shape L=%d C=%d NH=%d FF=%d V=%d", s->L, s->C, s->NH, s->FF, s->V);
    PEP_CHECK(s->max_B >= 1 && s->max_T >= 2 && s->max_positions >= s->max_T + 2, PEP_ERR_USAGE,
              "invalid model limits B=%d T=%d positions=%d (positions must be >= T + 2)", s->max_B, s->max_T,
              s->max_positions);
    PEP_CHECK(s->head == PEP_HEAD_KIND_MLM || s->ntags >= 1, PEP_ERR_USAGE, "a tagger needs at least one tag");
    if (s->pe == PEP_PE_METHOD_ADAPTER)
        PEP_CHECK(s->bottleneck >= 1, PEP_ERR_USAGE, "adapter bottleneck must be at least 1");
    if (s->pe == PEP_PE_METHOD_PREFIX)
        PEP_CHECK(s->prefix_len >= 1 && s->prefix_len <= s->max_positions, PEP_ERR_USAGE,
                  "prefix length %d must be between 1 and the position budget %d", s->prefix_len, s->max_positions);
    if (s->pe == PEP_PE_METHOD_LORA) PEP_CHECK(s->lora_rank >= 1, PEP_ERR_USAGE, "LoRA rank must be at least 1");
    int keys = s->max_T + (s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0);
    PEP_CHECK(keys <= PEP_DROPOUT_STRIDE, PEP_ERR_USAGE,
              "model.max_seq_len (%d) plus the prefix length gives %d attention keys, more than the %d the dropout "
              "masks can address; lower model.max_seq_len or pe.prefix_length", s->max_T, keys, PEP_DROPOUT_STRIDE);

    int rc = PEP_OK;
    struct pep_model *m = calloc(1, sizeof *m);
    PEP_CHECK(m, PEP_ERR_NOMEM, "out of memory creating the model");
    m->spec = *spec;
    pep_param_table_init(&m->table);
    PEP_CHECK_GOTO(rc, (m->state = calloc(1, sizeof *m->state)) != NULL, PEP_ERR_NOMEM, "out of memory");
    struct pep_model_state *st = m->state;
    PEP_CHECK_GOTO(rc, (st->lid = calloc((size_t)s->L, sizeof *st->lid)) != NULL, PEP_ERR_NOMEM, "out of memory");
    PEP_CHECK_GOTO(rc, (st->acts = calloc((size_t)s->L, sizeof *st->acts)) != NULL, PEP_ERR_NOMEM, "out of memory");
    PEP_CALL_GOTO(rc, build_table(m));
    PEP_ALLOC_GOTO(rc, m->params, m->table.numel);
    /* calloc, not pep_alloc: a large calloc maps fresh zero pages without writing them, so
     * the gradient rows of groups that never train (the frozen base in PE fine-tuning, about
     * 1.1 GB at XLM-R base size) are never touched and cost no resident memory */
    PEP_CHECK_GOTO(rc, (m->grads = calloc(m->table.numel, sizeof *m->grads)) != NULL, PEP_ERR_NOMEM,
                   "out of memory allocating the gradient block (%zu floats); reduce the model size or ask the "
                   "scheduler for more memory per task", m->table.numel);
    size_t N = (size_t)s->max_B * s->max_T;
    PEP_ALLOC_GOTO(rc, st->ids, N);
    PEP_ALLOC_GOTO(rc, st->pos, N);
    PEP_ALLOC_GOTO(rc, st->labels, N);
    PEP_ALLOC_GOTO(rc, st->rows, N);
    PEP_ALLOC_GOTO(rc, st->rowkey, N);
    PEP_ALLOC_GOTO(rc, st->labels_g, N);
    PEP_ALLOC_GOTO(rc, st->offsets, (size_t)s->max_B + 1);
    PEP_ALLOC_GOTO(rc, st->wte_dirty, (size_t)s->V);
    st->wte_all_dirty = 1;
    struct arena a = {0};
    layout(m, &a); /* sizing pass */
    a.cap = a.used;
    a.used = 0;
    PEP_ALLOC_GOTO(rc, a.base, a.cap);
    layout(m, &a);
    m->state->acts[0].x = NULL; /* set below from xs */
    for (int l = 0; l < s->L; l++) st->acts[l].x = st->xs + (size_t)l * N * s->C;
    /* keep the arena base for freeing: it is emb_sum (the first carve) */
    *out = m;
    return PEP_OK;
cleanup:
    pep_model_destroy(&m);
    return rc;
}

void pep_model_destroy(struct pep_model **pm)
{
    if (!pm || !*pm) return;
    struct pep_model *m = *pm;
    if (m->state) {
        struct pep_model_state *st = m->state;
        pep_free(st->emb_sum);
        free(st->lid);
        free(st->acts);
        pep_free(st->ids);
        pep_free(st->pos);
        pep_free(st->labels);
        pep_free(st->rows);
        pep_free(st->rowkey);
        pep_free(st->labels_g);
        pep_free(st->offsets);
        pep_free(st->wte_dirty);
        free(st);
    }
    pep_free(m->params);
    pep_free(m->grads);
    pep_param_table_fini(&m->table);
    free(m);
    *pm = NULL;
}

static uint64_t name_hash(const char *s) { return pep_fnv1a64(s, strlen(s)); }

void pep_model_init_weights(struct pep_model *m, uint64_t seed, unsigned groups)
{
    const struct pep_model_spec *s = &m->spec;
    for (int i = 0; i < m->table.count; i++) {
        const struct pep_param *p = &m->table.rows[i];
        if (!(groups & PEP_GROUP_BIT(p->group))) continue;
        float *w = m->params + p->offset;
        const char *n = p->name;
        size_t len = strlen(n);
        int is_ln_w = strstr(n, "LayerNorm.weight") || strstr(n, "layer_norm.weight");
        int zero = (len > 5 && !strcmp(n + len - 5, ".bias")) || strstr(n, "adapter_up.weight") || strstr(n, "lora_B") ||
                   strstr(n, "LayerNorm.bias") || strstr(n, "layer_norm.bias");
        if (is_ln_w) {
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        } else if (zero) {
            memset(w, 0, p->numel * sizeof(float));
        } else {
            /* each tensor's draw depends only on (seed, name), not on the table order */
            struct pep_rng r;
            pep_rng_seed(&r, seed, name_hash(n), 0);
            for (size_t j = 0; j < p->numel; j++) w[j] = s->init_std * pep_rng_normal(&r);
        }
    }
    /* Hugging Face zeroes the padding rows of the word and position tables */
    if (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) {
        memset(m->params + m->table.rows[m->state->wte].offset + (size_t)PEP_PAD_ID * s->C, 0, (size_t)s->C * sizeof(float));
        memset(m->params + m->table.rows[m->state->wpe].offset + (size_t)PEP_PAD_ID * s->C, 0, (size_t)s->C * sizeof(float));
    }
}

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

const float *pep_model_logits(const struct pep_model *m) { return m->state->logits; }
int pep_model_ntargets(const struct pep_model *m) { return m->state->ntargets; }

static void add_into(float *dst, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

/* Per-layer prefix keys/values: flat parameters, or the reparameterisation MLP's output. */
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
    int H = s->prefix_hidden, O = 2 * s->L * s->C;
    linear_forward(st->pre_h, W(m, st->pre_emb), W(m, st->pre_w0), W(m, st->pre_b0), (int)P, s->C, H, s->C, H);
    activation_forward(st->pre_act, st->pre_h, P * (size_t)H, PEP_ACT_KIND_TANH);
    linear_forward(st->kv, st->pre_act, W(m, st->pre_w2), W(m, st->pre_b2), (int)P, H, O, H, O);
    for (int l = 0; l < s->L; l++)
        for (size_t p = 0; p < P; p++) {
            memcpy(st->pk + (l * P + p) * C, st->kv + p * O + 2 * l * C, C * sizeof(float));
            memcpy(st->pv + (l * P + p) * C, st->kv + p * O + (2 * l + 1) * C, C * sizeof(float));
        }
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
    enum pep_act_kind ak = act_kind(s->adapter_act);
    float pd = train ? s->dropout : 0.0f, pa = train ? s->attention_dropout : 0.0f;
    st->nseq = nseq, st->N = N, st->train = train, st->seed = dropout_seed, st->seq0 = b->seq0;
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
        linear_forward(la->qkv, la->x, W(m, li->wq), W(m, li->bq), N, C, 3 * C, C, 3 * C);
        if (li->qa >= 0) {
            lora_forward(la->qkv, la->xa_q, la->x, W(m, li->qa), W(m, li->qb), N, C, C, r, scale_lora, C, 3 * C);
            lora_forward(la->qkv + 2 * C, la->xa_v, la->x, W(m, li->va), W(m, li->vb), N, C, C, r, scale_lora, C, 3 * C);
        }
        attention_forward(la->ctx, la->att, la->qkv, P ? st->pk + (size_t)l * P * C : NULL,
                          P ? st->pv + (size_t)l * P * C : NULL, st->offsets, nseq, st->seq0, C, NH, P, pa, dropout_seed,
                          SITE_LAYER(l, 1), st->att_scratch);
        linear_forward(la->ao, la->ctx, W(m, li->wo), W(m, li->bo), N, C, C, C, C);
        dropout_forward(la->ao, st->rowkey, N, C, pd, dropout_seed, SITE_LAYER(l, 2));
        const float *att_branch = la->ao;
        if (li->att_ad.wd >= 0) {
            adapter_forward(la->ao_ad, la->ah_pre, la->ah_act, la->ao, W(m, li->att_ad.wd), W(m, li->att_ad.bd),
                            W(m, li->att_ad.wu), W(m, li->att_ad.bu), N, C, R, ak);
            att_branch = la->ao_ad;
        }
        add_into(la->ln1_in, att_branch, la->x, NC);
        layernorm_forward(la->x1, la->ln1_mean, la->ln1_rstd, la->ln1_in, W(m, li->ln1w), W(m, li->ln1b), N, C, s->ln_eps);
        linear_forward(la->fc, la->x1, W(m, li->wi), W(m, li->bi), N, C, FF, C, FF);
        activation_forward(la->fc_act, la->fc, (size_t)N * FF, PEP_ACT_KIND_GELU);
        linear_forward(la->oo, la->fc_act, W(m, li->wout), W(m, li->bout), N, FF, C, FF, C);
        dropout_forward(la->oo, st->rowkey, N, C, pd, dropout_seed, SITE_LAYER(l, 3));
        const float *out_branch = la->oo;
        if (li->out_ad.wd >= 0) {
            adapter_forward(la->oo_ad, la->oh_pre, la->oh_act, la->oo, W(m, li->out_ad.wd), W(m, li->out_ad.bd),
                            W(m, li->out_ad.wu), W(m, li->out_ad.bu), N, C, R, ak);
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
        linear_forward(st->logits, st->hx, W(m, st->cls_w), W(m, st->cls_b), N, C, s->ntags, C, s->ntags);
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
            linear_forward(st->lm_d, st->hx, W(m, st->lm_dw), W(m, st->lm_db), M, C, C, C, C);
            activation_forward(st->lm_g, st->lm_d, (size_t)M * C, PEP_ACT_KIND_GELU);
            layernorm_forward(st->lm_ln, st->lm_mean, st->lm_rstd, st->lm_g, W(m, st->lm_lnw), W(m, st->lm_lnb), M, C,
                              s->ln_eps);
            linear_forward(st->logits, st->lm_ln, W(m, st->wte), W(m, st->lm_bias), M, C, s->V, C, s->V);
            total = xent_forward(st->logits, st->labels_g, M, s->V, PEP_IGNORE_INDEX, &count);
        }
    }
    st->ntargets = count;
    st->loss = count ? (float)(total / count) : 0.0f;
    *loss = st->loss;
    PEP_CHECK(isfinite(st->loss), PEP_ERR_NUMERIC, "non-finite loss (%g) in the forward pass", (double)st->loss);
    return PEP_OK;
}

int pep_model_backward(struct pep_model *m, unsigned groups)
{
    const struct pep_model_spec *s = &m->spec;
    struct pep_model_state *st = m->state;
    int nseq = st->nseq, N = st->N, C = s->C, FF = s->FF, NH = s->NH;
    int P = s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0;
    int R = s->bottleneck, r = s->lora_rank;
    float scale_lora = s->lora_alpha / (float)(r > 0 ? r : 1);
    enum pep_act_kind ak = act_kind(s->adapter_act);
    float pd = st->train ? s->dropout : 0.0f, pa = st->train ? s->attention_dropout : 0.0f;
    uint64_t seed = st->seed;
    size_t NC = (size_t)N * C;
    int need_plm = (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) != 0;
    int need_pe = (groups & PEP_GROUP_BIT(PEP_GROUP_PE)) != 0 && s->pe != PEP_PE_METHOD_NONE;
    int need_enc = need_plm || need_pe;
    if (st->ntargets == 0) return PEP_OK;
    float inv = 1.0f / (float)st->ntargets;

    float *dx = st->dx;
    memset(dx, 0, NC * sizeof(float));
    if (s->head == PEP_HEAD_KIND_TAGGER) {
        xent_backward(st->dlogits, st->logits, st->labels, N, s->ntags, PEP_IGNORE_INDEX, inv);
        linear_backward(need_enc ? dx : NULL, G(m, st->cls_w, groups), G(m, st->cls_b, groups), st->dlogits, st->hx,
                        W(m, st->cls_w), N, C, s->ntags, C, s->ntags);
        if (need_enc) dropout_backward(dx, st->rowkey, N, C, pd, seed, SITE_HEAD);
    } else if (st->M > 0) {
        int M = st->M;
        size_t MC = (size_t)M * C;
        xent_backward(st->dlogits, st->logits, st->labels_g, M, s->V, PEP_IGNORE_INDEX, inv);
        memset(st->lm_dln, 0, MC * sizeof(float));
        memset(st->lm_dg, 0, MC * sizeof(float));
        memset(st->lm_dd, 0, MC * sizeof(float));
        memset(st->dhx, 0, MC * sizeof(float));
        linear_backward(st->lm_dln, G(m, st->wte, groups), G(m, st->lm_bias, groups), st->dlogits, st->lm_ln,
                        W(m, st->wte), M, C, s->V, C, s->V);
        if (need_plm) st->wte_all_dirty = 1; /* the tied decoder writes every row */
        layernorm_backward(st->lm_dg, G(m, st->lm_lnw, groups), G(m, st->lm_lnb, groups), st->lm_dln, st->lm_g,
                           W(m, st->lm_lnw), st->lm_mean, st->lm_rstd, M, C);
        activation_backward(st->lm_dd, st->lm_d, st->lm_dg, MC, PEP_ACT_KIND_GELU);
        linear_backward(need_enc ? st->dhx : NULL, G(m, st->lm_dw, groups), G(m, st->lm_db, groups), st->lm_dd, st->hx,
                        W(m, st->lm_dw), M, C, C, C, C);
        if (need_enc)
            for (int i = 0; i < M; i++) {
                float *d = dx + (size_t)st->rows[i] * C;
                const float *g = st->dhx + (size_t)i * C;
                for (int c = 0; c < C; c++) d[c] += g[c];
            }
    }
    if (!need_enc) return PEP_OK;

    if (P) {
        memset(st->dpk, 0, (size_t)s->L * P * C * sizeof(float));
        memset(st->dpv, 0, (size_t)s->L * P * C * sizeof(float));
    }
    float *dnext = st->dx_next, *dln = st->dtmp, *dbr = st->dtmp2;
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
            adapter_backward(dbr, G(m, li->out_ad.wd, groups), G(m, li->out_ad.bd, groups), G(m, li->out_ad.wu, groups),
                             G(m, li->out_ad.bu, groups), dln, la->oo, la->oh_pre, la->oh_act, W(m, li->out_ad.wd),
                             W(m, li->out_ad.wu), N, C, R, ak, st->ad_scratch);
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
        linear_backward_set(st->dfc_act, G(m, li->wout, groups), G(m, li->bout, groups), doo, la->fc_act,
                            W(m, li->wout), N, FF, C, FF, C);
        activation_backward_inplace(st->dfc_act, la->fc, (size_t)N * FF, PEP_ACT_KIND_GELU);
        linear_backward(dx1, G(m, li->wi, groups), G(m, li->bi, groups), st->dfc_act, la->x1, W(m, li->wi), N, C, FF,
                        C, FF);
        /* attention LayerNorm */
        memset(dln, 0, NC * sizeof(float));
        layernorm_backward(dln, G(m, li->ln1w, groups), G(m, li->ln1b, groups), dx1, la->ln1_in, W(m, li->ln1w),
                           la->ln1_mean, la->ln1_rstd, N, C);
        memcpy(dnext, dln, NC * sizeof(float)); /* residual into the layer input */
        const float *dao = dln;
        if (li->att_ad.wd >= 0) {
            memset(dbr, 0, NC * sizeof(float));
            adapter_backward(dbr, G(m, li->att_ad.wd, groups), G(m, li->att_ad.bd, groups), G(m, li->att_ad.wu, groups),
                             G(m, li->att_ad.bu, groups), dln, la->ao, la->ah_pre, la->ah_act, W(m, li->att_ad.wd),
                             W(m, li->att_ad.wu), N, C, R, ak, st->ad_scratch);
            dao = dbr;
        } else if (pd > 0.0f) {
            memcpy(dbr, dln, NC * sizeof(float));
            dao = dbr;
        }
        /* the same below layer 0's attention adapter (Houlsby) when no prefix or LoRA sits under it */
        if (l == 0 && !need_plm && li->qa < 0 && P == 0) break;
        if (pd > 0.0f) dropout_backward((float *)dao, st->rowkey, N, C, pd, seed, SITE_LAYER(l, 2));
        float *dctx = dx; /* dx1 is consumed: reuse its storage */
        linear_backward_set(dctx, G(m, li->wo, groups), G(m, li->bo, groups), dao, la->ctx, W(m, li->wo), N, C, C, C, C);
        /* q|k|v gradients feed the layer input and LoRA; layer 0 of a frozen base with prefixes
         * needs neither, only its prefix gradients */
        int need_dx_in = l > 0 || need_plm;
        float *dqkv = need_dx_in || li->qa >= 0 ? st->dqkv : NULL;
        if (dqkv) memset(dqkv, 0, NC * 3 * sizeof(float));
        attention_backward(dqkv, P && need_pe ? st->dpk + (size_t)l * P * C : NULL,
                           P && need_pe ? st->dpv + (size_t)l * P * C : NULL, dctx, la->qkv,
                           P ? st->pk + (size_t)l * P * C : NULL, P ? st->pv + (size_t)l * P * C : NULL, la->att,
                           st->offsets, nseq, st->seq0, C, NH, P, pa, seed, SITE_LAYER(l, 1), st->att_scratch);
        if (!dqkv) break;
        if (li->qa >= 0) {
            lora_backward(need_dx_in ? dnext : NULL, G(m, li->qa, groups), G(m, li->qb, groups), st->dqkv, la->x,
                          la->xa_q, W(m, li->qa), W(m, li->qb), N, C, C, r, scale_lora, C, 3 * C, st->lora_scratch);
            lora_backward(need_dx_in ? dnext : NULL, G(m, li->va, groups), G(m, li->vb, groups), st->dqkv + 2 * C, la->x,
                          la->xa_v, W(m, li->va), W(m, li->vb), N, C, C, r, scale_lora, C, 3 * C, st->lora_scratch);
        }
        linear_backward(need_dx_in ? dnext : NULL, G(m, li->wq, groups), G(m, li->bq, groups), st->dqkv, la->x,
                        W(m, li->wq), N, C, 3 * C, C, 3 * C);
        float *t = dx;
        dx = dnext;
        dnext = t;
    }
    if (need_plm) {
        dropout_backward(dx, st->rowkey, N, C, pd, seed, SITE_EMB);
        memset(dln, 0, NC * sizeof(float));
        layernorm_backward(dln, G(m, st->embw, groups), G(m, st->embb, groups), dx, st->emb_sum, W(m, st->embw),
                           st->emb_mean, st->emb_rstd, N, C);
        embedding_backward(G(m, st->wte, groups), G(m, st->wpe, groups), G(m, st->wtt, groups), dln, st->ids, st->pos,
                           N, C);
        for (int i = 0; i < N; i++) st->wte_dirty[st->ids[i]] = 1;
    }
    if (P && need_pe) {
        size_t PC = (size_t)P * C;
        if (!s->prefix_reparam) {
            for (int l = 0; l < s->L; l++) {
                float *gk = G(m, st->lid[l].pk, groups), *gv = G(m, st->lid[l].pv, groups);
                for (size_t i = 0; i < PC; i++) gk[i] += st->dpk[l * PC + i], gv[i] += st->dpv[l * PC + i];
            }
        } else {
            int H = s->prefix_hidden, O = 2 * s->L * C;
            for (int l = 0; l < s->L; l++)
                for (int p = 0; p < P; p++) {
                    memcpy(st->dkv + (size_t)p * O + 2 * (size_t)l * C, st->dpk + l * PC + (size_t)p * C, (size_t)C * sizeof(float));
                    memcpy(st->dkv + (size_t)p * O + (2 * (size_t)l + 1) * C, st->dpv + l * PC + (size_t)p * C,
                           (size_t)C * sizeof(float));
                }
            float *dact = st->dpre, *dh = st->dpre + (size_t)P * H;
            memset(st->dpre, 0, 2 * (size_t)P * H * sizeof(float));
            linear_backward(dact, G(m, st->pre_w2, groups), G(m, st->pre_b2, groups), st->dkv, st->pre_act,
                            W(m, st->pre_w2), P, H, O, H, O);
            activation_backward(dh, st->pre_h, dact, (size_t)P * H, PEP_ACT_KIND_TANH);
            linear_backward(G(m, st->pre_emb, groups), G(m, st->pre_w0, groups), G(m, st->pre_b0, groups), dh,
                            W(m, st->pre_emb), W(m, st->pre_w0), P, C, H, C, H);
        }
    }
    return PEP_OK;
}

double pep_model_flops(const struct pep_model_spec *s, const struct pep_batch *b, unsigned groups)
{
    double N = pep_batch_tokens(b), C = s->C, FF = s->FF;
    double P = s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0;
    double qk = 0.0, qp = 0.0; /* sum over sequences of L (L + P) and of L P */
    for (int i = 0; i < b->nseq; i++) {
        double L = pep_batch_len(b, i);
        qk += L * (L + P), qp += L * P;
    }
    double mm = 2.0 * N * (3 * C * C + C * C + 2 * C * FF); /* projections per layer */
    double att = 2.0 * 2.0 * qk * C;                        /* scores + context per layer */
    double head = s->head == PEP_HEAD_KIND_TAGGER ? 2.0 * N * C * s->ntags : 0.0;
    double fwd = s->L * (mm + att) + head;
    int plm = (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) != 0;
    /* backward: input gradients for every matmul, plus weight gradients when the base trains.
     * With the base frozen, pep_model_backward stops in layer 0 below the lowest trainable
     * module: Pfeiffer adapters, nothing of layer 0; Houlsby, after its feed-forward block;
     * prefixes, after the score gradients and the prefix key/value products; LoRA, before
     * the q|k|v input gradient. */
    double layer0 = mm + 2 * att;
    if (!plm) {
        double ffn = 2.0 * N * 2 * C * FF, outp = 2.0 * N * C * C;
        if (s->pe == PEP_PE_METHOD_ADAPTER)
            layer0 = s->placement == PEP_ADAPTER_PLACEMENT_PFEIFFER ? 0.0 : ffn;
        else if (s->pe == PEP_PE_METHOD_PREFIX)
            layer0 = ffn + outp + 2.0 * qk * C + 2.0 * 2.0 * qp * C;
        else
            layer0 = mm + 2 * att - 2.0 * N * 3 * C * C;
    }
    double bwd = (s->L - 1) * (mm + 2 * att) + layer0 + head + (plm ? s->L * mm : 0.0) + head;
    return fwd + bwd;
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
