/* Building an encoder (model.h): the parameter table (Hugging Face names and shapes, in
 * groups plm / pe / head), the activation arena sized for max_B * max_T tokens, create /
 * destroy, and the seeded weight initialisation. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "layers/layers.h"
#include "model/model.h"
#include "model/model_state.h"

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
    /* attention's scratch: one slice a thread, allocated by pep_model_set_threads */
    st->att_stride = (attention_scratch_floats(s->max_T, (int)P) + 15) & ~(size_t)15;
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
    /* calloc, not pep_alloc, as for the gradient block: the arena is sized for max_B x max_T
     * tokens but a ragged batch writes only its own N rows, so the pages past the largest batch
     * seen are never touched and cost no resident memory (pep_alloc's memset would make all of
     * it resident: 4.0 GiB for the base shape at 32 x 128). Over-allocated by 64 bytes to keep
     * the buffers 64-byte aligned. */
    PEP_CHECK_GOTO(rc, (st->arena_raw = calloc(a.cap + 16, sizeof(float))) != NULL, PEP_ERR_NOMEM,
                   "out of memory allocating the activation arena (%zu floats for %d x %d tokens); lower "
                   "the batch size or model.max_seq_len, or ask the scheduler for more memory per task",
                   a.cap, s->max_B, s->max_T);
    a.base = (float *)(((uintptr_t)st->arena_raw + 63) & ~(uintptr_t)63);
    layout(m, &a);
    m->state->acts[0].x = NULL; /* set below from xs */
    for (int l = 0; l < s->L; l++) st->acts[l].x = st->xs + (size_t)l * N * s->C;
    if ((rc = pep_model_set_threads(m, 1)) != PEP_OK) goto cleanup;
    *out = m;
    return PEP_OK;
cleanup:
    pep_model_destroy(&m);
    return rc;
}

int pep_model_set_threads(struct pep_model *m, int threads)
{
    struct pep_model_state *st = m->state;
    PEP_CHECK(threads >= 1, PEP_ERR_USAGE, "model threads = %d: give 1 or more", threads);
    /* 64-byte aligned slices, as the arena's buffers (att_stride is a multiple of 16 floats) */
    float *scratch = aligned_alloc(64, (size_t)threads * st->att_stride * sizeof(float));
    PEP_CHECK(scratch != NULL, PEP_ERR_NOMEM, "out of memory for attention scratch of %d threads", threads);
    free(st->att_scratch);
    st->att_scratch = scratch;
    pep_pool_destroy(&st->pool);
    return threads == 1 ? PEP_OK : pep_pool_create(threads, &st->pool);
}

void pep_model_destroy(struct pep_model **pm)
{
    if (!pm || !*pm) return;
    struct pep_model *m = *pm;
    if (m->state) {
        struct pep_model_state *st = m->state;
        pep_pool_destroy(&st->pool);
        free(st->att_scratch);
        free(st->arena_raw);
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
