/* Hugging Face safetensors -> peprime parameter table + flat block, its model spec, [model]
 * INI section and base checkpoint (hf_import.h). */
#include "hf_import.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "core/error.h"
#include "hf_names.h"
#include "json.h"
#include "safetensors.h"

#define MAX_REPORT 40 /* problems listed one per line before the summary error */

void pep_hf_import_default_options(struct pep_hf_import_options *o)
{
    memset(o, 0, sizeof *o);
}

void pep_hf_model_fini(struct pep_hf_model *m)
{
    if (!m) return;
    pep_param_table_fini(&m->table);
    pep_free(m->params);
    memset(m, 0, sizeof *m);
}

/* One file tensor that maps to a peprime name. */
struct mapped {
    char name[PEP_PARAM_NAME_MAX];
    int index; /* into the safetensors file */
};

struct problems {
    int missing, shape, unexpected;
    char first[512]; /* the first few names, for the summary message */
};

static void note_problem(struct problems *p, int *counter, const char *line)
{
    (*counter)++;
    int total = p->missing + p->shape + p->unexpected;
    if (total <= MAX_REPORT) pep_warn("%s", line);
    size_t used = strlen(p->first);
    if (used + strlen(line) + 3 < sizeof p->first) snprintf(p->first + used, sizeof p->first - used, "%s%s", used ? "; " : "", line);
}

static const struct mapped *find_mapped(const struct mapped *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0) return &m[i];
    return NULL;
}

static void fmt_shape(char *buf, size_t len, const struct pep_st_tensor *t)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int k = 0; k < t->ndim && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", k ? ", " : "", t->shape[k]);
    if (used < len) snprintf(buf + used, len - used, ")");
}

/* Integer from config.json, cross-checked against the value found in the tensors (if > 0). */
static int config_int(const struct pep_json *cfg, const char *path, const char *key, int from_tensors, const char *tensor,
                      int *out)
{
    const struct pep_json *v = pep_json_get(cfg, key);
    if (!v) {
        *out = from_tensors;
        return PEP_OK;
    }
    uint64_t u;
    PEP_CHECK(pep_json_as_u64(v, &u) == 0 && u <= 1u << 30, PEP_ERR_FORMAT, "%s: '%s' must be a non-negative integer",
              path, key);
    PEP_CHECK(from_tensors <= 0 || (int)u == from_tensors, PEP_ERR_FORMAT,
              "%s: '%s' = %d, but the weights have %d (%s); are config.json and the weights from the same model?", path,
              key, (int)u, from_tensors, tensor);
    *out = (int)u;
    return PEP_OK;
}

static int read_config(const char *path, struct pep_hf_shape *s, const struct pep_hf_import_options *o)
{
    struct pep_json *cfg = NULL;
    PEP_CALL(pep_json_parse_file(path, &cfg));
    int rc = PEP_OK;
    PEP_CHECK_GOTO(rc, cfg->type == PEP_JSON_TYPE_OBJECT, PEP_ERR_FORMAT, "%s: not a JSON object", path);
    PEP_CALL_GOTO(rc, config_int(cfg, path, "hidden_size", s->C, "embeddings.word_embeddings.weight columns", &s->C));
    PEP_CALL_GOTO(rc, config_int(cfg, path, "num_hidden_layers", s->L, "encoder.layer.N count", &s->L));
    PEP_CALL_GOTO(rc, config_int(cfg, path, "intermediate_size", s->FF, "encoder.layer.0.intermediate.dense.weight rows", &s->FF));
    PEP_CALL_GOTO(rc, config_int(cfg, path, "vocab_size", s->V, "embeddings.word_embeddings.weight rows", &s->V));
    PEP_CALL_GOTO(rc, config_int(cfg, path, "max_position_embeddings", s->max_positions,
                                 "embeddings.position_embeddings.weight rows", &s->max_positions));
    PEP_CALL_GOTO(rc, config_int(cfg, path, "type_vocab_size", s->type_vocab, "embeddings.token_type_embeddings.weight rows",
                                 &s->type_vocab));
    int nh = 0;
    PEP_CALL_GOTO(rc, config_int(cfg, path, "num_attention_heads", 0, "", &nh));
    PEP_CHECK_GOTO(rc, !(o->heads > 0 && nh > 0 && o->heads != nh), PEP_ERR_USAGE,
                   "--heads %d contradicts %s num_attention_heads = %d", o->heads, path, nh);
    if (nh > 0) s->NH = nh;
    const struct pep_json *v = pep_json_get(cfg, "layer_norm_eps");
    if (v) {
        PEP_CHECK_GOTO(rc, v->type == PEP_JSON_TYPE_NUMBER && v->number > 0 && v->number < 1, PEP_ERR_FORMAT,
                       "%s: 'layer_norm_eps' must be a number in (0, 1)", path);
        s->ln_eps = (float)v->number;
    }
    v = pep_json_get(cfg, "hidden_act");
    PEP_CHECK_GOTO(rc, !v || (v->type == PEP_JSON_TYPE_STRING && strcmp(v->string, "gelu") == 0), PEP_ERR_FORMAT,
                   "%s: hidden_act '%s' is not supported; peprime's encoder uses exact (erf) GELU, \"gelu\"", path,
                   v && v->type == PEP_JSON_TYPE_STRING ? v->string : "?");
    v = pep_json_get(cfg, "position_embedding_type");
    PEP_CHECK_GOTO(rc, !v || (v->type == PEP_JSON_TYPE_STRING && strcmp(v->string, "absolute") == 0), PEP_ERR_FORMAT,
                   "%s: position_embedding_type '%s' is not supported (only \"absolute\")", path,
                   v && v->type == PEP_JSON_TYPE_STRING ? v->string : "?");
    v = pep_json_get(cfg, "model_type");
    if (v && v->type == PEP_JSON_TYPE_STRING) snprintf(s->model_type, sizeof s->model_type, "%s", v->string);
cleanup:
    pep_json_free(&cfg);
    return rc;
}

/* Adds the expected row `name` with shape (d0[, d1]) and checks the file's tensor. */
static int expect_row(struct pep_param_table *t, const pep_safetensors_t *st, const struct mapped *mp, int nmapped,
                      struct problems *pr, enum pep_group g, const char *name, int ndim, size_t d0, size_t d1)
{
    PEP_CALL(pep_param_table_add(t, name, g, ndim, d0, d1, NULL));
    char line[400];
    const struct mapped *m = find_mapped(mp, nmapped, name);
    if (!m) {
        snprintf(line, sizeof line, "missing tensor %s", name);
        note_problem(pr, &pr->missing, line);
        return PEP_OK;
    }
    const struct pep_st_tensor *x = pep_safetensors_tensor(st, m->index);
    if (x->ndim != ndim || x->shape[0] != d0 || (ndim > 1 && x->shape[1] != d1)) {
        char have[128];
        fmt_shape(have, sizeof have, x);
        if (ndim > 1) snprintf(line, sizeof line, "tensor %s has shape %s, expected (%zu, %zu)", x->name, have, d0, d1);
        else snprintf(line, sizeof line, "tensor %s has shape %s, expected (%zu)", x->name, have, d0);
        note_problem(pr, &pr->shape, line);
    }
    return PEP_OK;
}

static int build_table(struct pep_param_table *t, const struct pep_hf_shape *s, const pep_safetensors_t *st,
                       const struct mapped *mp, int n, struct problems *pr)
{
    size_t C = (size_t)s->C, FF = (size_t)s->FF;
    PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, "embeddings.word_embeddings.weight", 2, (size_t)s->V, C));
    PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, "embeddings.position_embeddings.weight", 2, (size_t)s->max_positions, C));
    PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, "embeddings.token_type_embeddings.weight", 2, (size_t)s->type_vocab, C));
    PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, "embeddings.LayerNorm.weight", 1, C, 0));
    PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, "embeddings.LayerNorm.bias", 1, C, 0));
    static const struct {
        const char *sub;
        int out_ff, in_ff; /* out / in width is FF instead of C */
        int is_ln;
    } mods[] = {
        {"attention.self.query", 0, 0, 0}, {"attention.self.key", 0, 0, 0},        {"attention.self.value", 0, 0, 0},
        {"attention.output.dense", 0, 0, 0}, {"attention.output.LayerNorm", 0, 0, 1}, {"intermediate.dense", 1, 0, 0},
        {"output.dense", 0, 1, 0},          {"output.LayerNorm", 0, 0, 1},
    };
    char name[PEP_PARAM_NAME_MAX];
    for (int l = 0; l < s->L; l++)
        for (size_t k = 0; k < sizeof mods / sizeof mods[0]; k++) {
            size_t out = mods[k].out_ff ? FF : C, in = mods[k].in_ff ? FF : C;
            snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", l, mods[k].sub);
            if (mods[k].is_ln) PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, name, 1, C, 0));
            else PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, name, 2, out, in));
            snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", l, mods[k].sub);
            PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_PLM, name, 1, out, 0));
        }
    if (s->ntags > 0) {
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "classifier.weight", 2, (size_t)s->ntags, C));
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "classifier.bias", 1, (size_t)s->ntags, 0));
    }
    if (s->has_mlm_head) {
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "lm_head.dense.weight", 2, C, C));
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "lm_head.dense.bias", 1, C, 0));
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "lm_head.layer_norm.weight", 1, C, 0));
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "lm_head.layer_norm.bias", 1, C, 0));
        PEP_CALL(expect_row(t, st, mp, n, pr, PEP_GROUP_HEAD, "lm_head.bias", 1, (size_t)s->V, 0));
    }
    return PEP_OK;
}

/* Checks a tied tensor (decoder weight / bias) against the imported one; warns if different. */
static int check_tied(const pep_safetensors_t *st, int index, const struct pep_hf_model *m, const char *target)
{
    const struct pep_st_tensor *x = pep_safetensors_tensor(st, index);
    int row = pep_param_table_find(&m->table, target);
    if (row < 0) return PEP_OK; /* target itself missing or dropped: already reported */
    const struct pep_param *p = &m->table.rows[row];
    if (x->numel != p->numel) {
        pep_warn("%s: %s has %zu elements but %s has %zu; ignoring it (peprime ties it to %s)",
                 pep_safetensors_path(st), x->name, x->numel, target, p->numel, target);
        return PEP_OK;
    }
    float *tmp;
    PEP_ALLOC(tmp, x->numel);
    int rc = pep_safetensors_read_f32(st, index, tmp, x->numel);
    if (rc == PEP_OK) {
        double maxdiff = 0;
        for (size_t i = 0; i < x->numel; i++) {
            double d = fabs((double)tmp[i] - (double)m->params[p->offset + i]);
            if (!(d <= maxdiff)) maxdiff = d; /* NaN counts as a difference */
        }
        if (maxdiff != 0)
            pep_warn("%s: %s differs from %s (max |diff| %g); peprime ties them, so the MLM head uses %s", pep_safetensors_path(st),
                     x->name, target, maxdiff, target);
        else pep_info("%s: %s equals %s (tied)", pep_safetensors_path(st), x->name, target);
    }
    pep_free(tmp);
    return rc == PEP_OK ? PEP_OK : pep_error_trace(rc, __FILE__, __LINE__, __func__);
}

int pep_hf_import(const char *path, const struct pep_hf_import_options *o, struct pep_hf_model *m)
{
    memset(m, 0, sizeof *m);
    pep_param_table_init(&m->table);
    struct pep_hf_import_options defaults;
    if (!o) {
        pep_hf_import_default_options(&defaults);
        o = &defaults;
    }
    pep_safetensors_t *st = NULL;
    struct mapped *mp = NULL;
    int *tied = NULL, ntied = 0, nmapped = 0;
    struct problems pr;
    memset(&pr, 0, sizeof pr);
    int rc = PEP_OK;
    PEP_CALL_GOTO(rc, pep_safetensors_open(path, &st));
    int count = pep_safetensors_count(st);
    PEP_ALLOC_GOTO(rc, mp, count + 1);
    PEP_ALLOC_GOTO(rc, tied, count + 1);

    /* 1. names */
    int max_layer = -1;
    char line[400];
    for (int i = 0; i < count; i++) {
        const struct pep_st_tensor *x = pep_safetensors_tensor(st, i);
        char name[PEP_PARAM_NAME_MAX];
        const char *note;
        enum pep_hf_name_kind kind = pep_hf_map_name(x->name, name, sizeof name, &note);
        if (kind == PEP_HF_NAME_KIND_IGNORED) {
            pep_info("%s: skipping %s (%s)", path, x->name, note);
            continue;
        }
        if (kind == PEP_HF_NAME_KIND_TIED || kind == PEP_HF_NAME_KIND_TIED_BIAS) {
            tied[ntied++] = i;
            continue;
        }
        if (kind == PEP_HF_NAME_KIND_UNKNOWN) {
            snprintf(line, sizeof line, "unexpected tensor %s (%s)", x->name, note);
            if (o->allow_unexpected) pep_warn("%s: skipping %s", path, line);
            else note_problem(&pr, &pr.unexpected, line);
            continue;
        }
        if (o->drop_heads && (strncmp(name, "classifier.", 11) == 0 || strncmp(name, "lm_head.", 8) == 0)) {
            pep_info("%s: skipping %s (--drop-heads)", path, x->name);
            continue;
        }
        const struct mapped *dup = find_mapped(mp, nmapped, name);
        PEP_CHECK_GOTO(rc, !dup, PEP_ERR_FORMAT, "%s: tensors '%s' and '%s' both map to %s; keep only one of them", path,
                       pep_safetensors_tensor(st, dup ? dup->index : 0)->name, x->name, name);
        PEP_CHECK_GOTO(rc, x->dtype == PEP_ST_DTYPE_F32 || x->dtype == PEP_ST_DTYPE_F16 || x->dtype == PEP_ST_DTYPE_BF16,
                       PEP_ERR_FORMAT, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16", path, x->name,
                       pep_st_dtype_name(x->dtype));
        snprintf(mp[nmapped].name, sizeof mp[nmapped].name, "%s", name);
        mp[nmapped].index = i;
        nmapped++;
        int layer = pep_hf_layer_index(name, NULL);
        if (layer > max_layer) max_layer = layer;
        const char *dt = pep_st_dtype_name(x->dtype);
        if (!m->source_dtype[0]) snprintf(m->source_dtype, sizeof m->source_dtype, "%s", dt);
        else if (strcmp(m->source_dtype, dt) != 0) snprintf(m->source_dtype, sizeof m->source_dtype, "mixed");
    }

    /* 2. shape from the tensors */
    struct pep_hf_shape *s = &m->shape;
    s->ln_eps = 1e-5f;
    const struct mapped *we = find_mapped(mp, nmapped, "embeddings.word_embeddings.weight");
    PEP_CHECK_GOTO(rc, we, PEP_ERR_FORMAT,
                   "%s: no embeddings.word_embeddings.weight (or roberta./bert. prefixed) tensor; is this an XLM-R / "
                   "BERT checkpoint?", path);
    const struct pep_st_tensor *x = pep_safetensors_tensor(st, we->index);
    PEP_CHECK_GOTO(rc, x->ndim == 2 && x->shape[0] > 0 && x->shape[1] > 0 && x->shape[0] < (1u << 30) && x->shape[1] < (1u << 20),
                   PEP_ERR_FORMAT, "%s: %s must be a non-empty (vocab, hidden) matrix", path, x->name);
    s->V = (int)x->shape[0];
    s->C = (int)x->shape[1];
    s->L = max_layer + 1;
    const struct { const char *name; int *dst; } rows[] = {
        {"embeddings.position_embeddings.weight", &s->max_positions},
        {"embeddings.token_type_embeddings.weight", &s->type_vocab},
        {"encoder.layer.0.intermediate.dense.weight", &s->FF},
        {"classifier.weight", &s->ntags},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        const struct mapped *r = find_mapped(mp, nmapped, rows[k].name);
        if (!r) continue;
        const struct pep_st_tensor *y = pep_safetensors_tensor(st, r->index);
        PEP_CHECK_GOTO(rc, y->ndim >= 1 && y->shape[0] < (1u << 30), PEP_ERR_FORMAT, "%s: %s has a bad shape", path, y->name);
        *rows[k].dst = (int)y->shape[0];
    }
    if (!find_mapped(mp, nmapped, "classifier.weight") && find_mapped(mp, nmapped, "classifier.bias")) s->ntags = -1;
    for (int i = 0; i < nmapped; i++)
        if (strncmp(mp[i].name, "lm_head.", 8) == 0) s->has_mlm_head = 1;

    /* 3. config.json */
    if (o->config_path) PEP_CALL_GOTO(rc, read_config(o->config_path, s, o));
    if (!s->NH) {
        if (o->heads > 0) s->NH = o->heads;
        else {
            PEP_CHECK_GOTO(rc, s->C % 64 == 0, PEP_ERR_USAGE,
                           "%s: hidden size %d is not a multiple of 64: give --config config.json or --heads N", path, s->C);
            s->NH = s->C / 64;
            pep_warn("%s: no config.json: assuming %d attention heads (hidden %d / 64, as in XLM-R and BERT base/large); "
                     "give --config to be sure", path, s->NH, s->C);
        }
    }
    PEP_CHECK_GOTO(rc, s->L > 0, PEP_ERR_FORMAT, "%s: no encoder.layer.N tensors", path);
    PEP_CHECK_GOTO(rc, s->L <= 1024, PEP_ERR_FORMAT, "%s: tensor names reach encoder.layer.%d; at most 1024 layers are supported",
                   path, s->L - 1);
    PEP_CHECK_GOTO(rc, s->C % s->NH == 0, PEP_ERR_FORMAT, "%s: %d heads do not divide hidden size %d", path, s->NH, s->C);
    if (s->ntags < 0) s->ntags = 0, note_problem(&pr, &pr.missing, "missing tensor classifier.weight (classifier.bias is present)");
    if (strcmp(s->model_type, "bert") == 0)
        pep_warn("%s: BERT checkpoint: peprime computes positions the XLM-R way (padding offset 2), so BERT's position "
                 "table is used shifted by two rows; fine-tune before comparing with Hugging Face outputs",
                 path);

    /* 4. expected table vs file */
    PEP_CALL_GOTO(rc, build_table(&m->table, s, st, mp, nmapped, &pr));
    for (int i = 0; i < nmapped; i++)
        if (pep_param_table_find(&m->table, mp[i].name) < 0) {
            snprintf(line, sizeof line, "unexpected tensor %s (layer beyond the encoder's %d layers?)",
                     pep_safetensors_tensor(st, mp[i].index)->name, s->L);
            note_problem(&pr, &pr.unexpected, line);
        }
    if (pr.missing || pr.shape || pr.unexpected) {
        rc = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__,
                           "%s: not a model peprime can import: %d missing, %d wrongly shaped, %d unexpected tensors "
                           "(L=%d C=%d FF=%d V=%d inferred): %s%s",
                           path, pr.missing, pr.shape, pr.unexpected, s->L, s->C, s->FF, s->V, pr.first,
                           pr.unexpected && !o->allow_unexpected ? " (--allow-unexpected skips unexpected tensors)" : "");
        goto cleanup;
    }

    /* 5. values */
    PEP_ALLOC_GOTO(rc, m->params, m->table.numel);
    for (int r = 0; r < m->table.count; r++) {
        const struct pep_param *p = &m->table.rows[r];
        const struct mapped *src = find_mapped(mp, nmapped, p->name);
        PEP_CALL_GOTO(rc, pep_safetensors_read_f32(st, src->index, m->params + p->offset, p->numel));
        size_t bad = 0;
        for (size_t i = 0; i < p->numel; i++)
            if (!isfinite(m->params[p->offset + i])) bad++;
        PEP_CHECK_GOTO(rc, bad == 0, PEP_ERR_FORMAT, "%s: tensor '%s' has %zu non-finite values (corrupt file?)", path,
                       pep_safetensors_tensor(st, src->index)->name, bad);
    }
    for (int i = 0; i < ntied; i++) {
        char target[PEP_PARAM_NAME_MAX];
        pep_hf_map_name(pep_safetensors_tensor(st, tied[i])->name, target, sizeof target, NULL);
        PEP_CALL_GOTO(rc, check_tied(st, tied[i], m, target));
    }
    pep_info("%s: imported %d tensors (%zu floats, %s): L=%d C=%d NH=%d FF=%d V=%d max_positions=%d type_vocab=%d%s%s",
             path, m->table.count, m->table.numel, m->source_dtype, s->L, s->C, s->NH, s->FF, s->V, s->max_positions,
             s->type_vocab, s->ntags ? ", classifier" : "", s->has_mlm_head ? ", lm_head" : "");
cleanup:
    pep_free(mp);
    pep_free(tied);
    pep_safetensors_close(&st);
    if (rc != PEP_OK) pep_hf_model_fini(m);
    return rc;
}

/* ---- model spec, [model] section, checkpoint ------------------------------------------------ */

int pep_hf_model_spec(const struct pep_hf_model *m, int max_B, int max_T, struct pep_model_spec *spec)
{
    const struct pep_hf_shape *s = &m->shape;
    PEP_CHECK(s->L > 0 && s->C > 0 && s->NH > 0, PEP_ERR_USAGE, "pep_hf_model_spec: no imported model");
    PEP_CHECK(s->max_positions >= 6, PEP_ERR_FORMAT,
              "the position table has %d rows; peprime needs at least max_seq_len + 2 = 6 (XLM-R positions start "
              "after the padding index)", s->max_positions);
    if (max_T <= 0) max_T = pep_hf_default_seq_len(m);
    PEP_CHECK(max_T + 2 <= s->max_positions, PEP_ERR_USAGE,
              "max_T = %d needs max_T + 2 = %d position rows, the model has %d", max_T, max_T + 2, s->max_positions);
    memset(spec, 0, sizeof *spec);
    spec->L = s->L, spec->C = s->C, spec->NH = s->NH, spec->FF = s->FF, spec->V = s->V;
    spec->max_T = max_T;
    spec->max_B = max_B > 0 ? max_B : 1;
    spec->max_positions = s->max_positions;
    spec->type_vocab = s->type_vocab;
    spec->ntags = s->ntags;
    spec->ln_eps = s->ln_eps;
    spec->init_std = 0.02f;
    spec->head = s->ntags > 0 ? PEP_HEAD_KIND_TAGGER : s->has_mlm_head ? PEP_HEAD_KIND_MLM : PEP_HEAD_KIND_TAGGER;
    spec->pe = PEP_PE_METHOD_NONE;
    return PEP_OK;
}

int pep_hf_default_seq_len(const struct pep_hf_model *m)
{
    int t = m->shape.max_positions - 2;
    return t > PEP_HF_DEFAULT_SEQ_LEN ? PEP_HF_DEFAULT_SEQ_LEN : t;
}

int pep_hf_model_ini(const struct pep_hf_model *m, const char *tokenizer, char **out)
{
    const struct pep_hf_shape *s = &m->shape;
    *out = NULL;
    PEP_CHECK(s->max_positions >= 6, PEP_ERR_FORMAT, "the position table has %d rows; at least 6 are needed",
              s->max_positions);
    char *buf;
    size_t cap = 2048 + (tokenizer ? strlen(tokenizer) : 0);
    PEP_ALLOC(buf, cap);
    snprintf(buf, cap,
             "# [model] section of an imported Hugging Face model (peprime import-hf).\n"
             "# Include it at the top of a job file (`include = base.ini`, before the sections) and\n"
             "# start the stage with `--init base.h5`. layers..vocab, max_positions and type_vocab are\n"
             "# fixed by the weights. max_seq_len may be set anywhere up to max_positions - 2 = %d\n"
             "# (longer sentences are truncated; activation memory grows with it).\n"
             "[model]\n"
             "layers = %d\n"
             "hidden = %d\n"
             "heads = %d\n"
             "ff = %d\n"
             "vocab = %d\n"
             "max_seq_len = %d\n"
             "max_positions = %d\n"
             "type_vocab = %d\n"
             "layer_norm_eps = %g\n"
             "tokenizer = %s\n",
             s->max_positions - 2, s->L, s->C, s->NH, s->FF, s->V, pep_hf_default_seq_len(m), s->max_positions,
             s->type_vocab, (double)s->ln_eps, tokenizer ? tokenizer : "");
    *out = buf;
    return PEP_OK;
}

int pep_hf_write_checkpoint(const struct pep_hf_model *m, const char *path, const char *config_ini, MPI_Comm comm)
{
    struct pep_model_spec spec;
    PEP_CALL(pep_hf_model_spec(m, 1, 0, &spec));
    struct pep_ckpt_writer *w = NULL;
    int rc = PEP_OK;
    PEP_CALL(pep_ckpt_create(path, comm, NULL, &w));
    struct pep_ckpt_header h = {.stage = "import-hf", .step = 0, .config = config_ini ? config_ini : "", .spec = &spec};
    PEP_CALL_GOTO(rc, pep_ckpt_write_header(w, &h));
    PEP_CALL_GOTO(rc, pep_ckpt_write_params(w, &m->table, m->params,
                                            PEP_GROUP_BIT(PEP_GROUP_PLM) | PEP_GROUP_BIT(PEP_GROUP_HEAD)));
    PEP_CALL_GOTO(rc, pep_ckpt_commit(&w));
cleanup:
    if (w) pep_ckpt_abort(&w);
    return rc;
}
