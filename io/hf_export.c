/* Hugging Face files from a peprime model (hf_export.h): names from hf_names.c, tensors through
 * safetensors_write.c, the JSON config files written here. */
#include "hf_export.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "hf_names.h"
#include "safetensors.h"

static const char *const ST_META[] = {"format", "pt"};

/* The tensors of one output file, collected before writing. */
struct st_list {
    struct pep_st_out *t;
    char (*names)[160];
    int n, cap;
};

static int list_add(struct st_list *l, const char *name, const struct pep_param *p, const float *data)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct pep_st_out *t;
        char(*names)[160];
        PEP_ALLOC(t, cap);
        PEP_ALLOC(names, cap);
        if (l->n) memcpy(t, l->t, sizeof *t * (size_t)l->n), memcpy(names, l->names, sizeof *names * (size_t)l->n);
        pep_free(l->t);
        pep_free(l->names);
        l->t = t, l->names = names, l->cap = cap;
        for (int i = 0; i < l->n; i++) l->t[i].name = l->names[i];
    }
    PEP_CHECK((size_t)snprintf(l->names[l->n], sizeof l->names[l->n], "%s", name) < sizeof l->names[l->n],
              PEP_ERR_USAGE, "tensor name '%s' is too long", name);
    struct pep_st_out *o = &l->t[l->n];
    o->name = l->names[l->n];
    o->ndim = p ? p->ndim : 0;
    for (int d = 0; p && d < p->ndim; d++) o->shape[d] = p->shape[d];
    o->data = data;
    l->n++;
    return PEP_OK;
}

static void list_free(struct st_list *l)
{
    pep_free(l->t);
    pep_free(l->names);
    memset(l, 0, sizeof *l);
}

static int make_dir(const char *path)
{
    PEP_CHECK(mkdir(path, 0755) == 0 || errno == EEXIST, PEP_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    return PEP_OK;
}

static int join(char *buf, size_t len, const char *dir, const char *name)
{
    PEP_CHECK((size_t)snprintf(buf, len, "%s/%s", dir, name) < len, PEP_ERR_USAGE, "path %s/%s is too long", dir, name);
    return PEP_OK;
}

/* Writes text to dir/name (via name.tmp + rename). */
static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096], tmp[4200];
    PEP_CALL(join(path, sizeof path, dir, name));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    PEP_CHECK(f, PEP_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    PEP_CHECK(!bad, PEP_ERR_IO, "writing '%s' failed: %s", tmp, strerror(errno));
    PEP_CHECK(rename(tmp, path) == 0, PEP_ERR_IO, "cannot rename '%s': %s", tmp, strerror(errno));
    return PEP_OK;
}

static int copy_file(const char *from, const char *dir, const char *name)
{
    char path[4096];
    PEP_CALL(join(path, sizeof path, dir, name));
    FILE *in = fopen(from, "rb");
    PEP_CHECK(in, PEP_ERR_IO, "cannot read the tokenizer '%s': %s (give it with --spm)", from, strerror(errno));
    FILE *out = fopen(path, "wb");
    if (!out) {
        fclose(in);
        PEP_FAIL(PEP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    PEP_CHECK(!bad, PEP_ERR_IO, "copying '%s' to '%s' failed: %s", from, path, strerror(errno));
    return PEP_OK;
}

/* Appends printf output to a growing text buffer (*buf, *used, *cap). */
static int add(char **buf, size_t *used, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int add(char **buf, size_t *used, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(*buf + *used, *cap - *used, fmt, ap);
        va_end(ap);
        PEP_CHECK(k >= 0, PEP_ERR_INTERNAL, "formatting failed");
        if ((size_t)k < *cap - *used) {
            *used += (size_t)k;
            return PEP_OK;
        }
        char *bigger;
        PEP_ALLOC(bigger, 2 * *cap + (size_t)k);
        memcpy(bigger, *buf, *used + 1);
        pep_free(*buf);
        *buf = bigger;
        *cap = 2 * *cap + (size_t)k;
    }
}

/* A label is copied into JSON only if it needs no escaping. */
static int label_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') return 0;
    return 1;
}

static int write_config(const char *dir, const struct pep_hf_export *e)
{
    const struct pep_model_spec *s = e->spec;
    int tagger = s->head == PEP_HEAD_KIND_TAGGER;
    size_t used = 0, cap = 4096;
    char *j;
    int rc = PEP_OK;
    PEP_ALLOC(j, cap);
    j[0] = '\0';
    PEP_CALL_GOTO(rc, add(&j, &used, &cap,
                          "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"xlm-roberta\",\n"
                          "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                          "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n  \"hidden_act\": \"gelu\",\n"
                          "  \"hidden_dropout_prob\": %g,\n  \"attention_probs_dropout_prob\": %g,\n"
                          "  \"max_position_embeddings\": %d,\n  \"type_vocab_size\": %d,\n  \"initializer_range\": %g,\n"
                          "  \"layer_norm_eps\": %.9g,\n  \"position_embedding_type\": \"absolute\",\n"
                          "  \"pad_token_id\": 1,\n  \"bos_token_id\": 0,\n  \"eos_token_id\": 2,\n"
                          "  \"torch_dtype\": \"float32\",\n  \"peprime_source\": \"%s\"",
                          tagger ? "XLMRobertaForTokenClassification" : "XLMRobertaForMaskedLM", s->V, s->C, s->L,
                          s->NH, s->FF, (double)s->dropout, (double)s->attention_dropout, s->max_positions,
                          s->type_vocab, (double)(s->init_std > 0 ? s->init_std : 0.02f), (double)s->ln_eps,
                          e->source && label_ok(e->source) ? e->source : ""));
    if (tagger) {
        for (int pass = 0; pass < 2; pass++) {
            PEP_CALL_GOTO(rc, add(&j, &used, &cap, ",\n  \"%s\": {", pass ? "label2id" : "id2label"));
            for (int k = 0; k < s->ntags; k++) {
                char name[64];
                if (e->labels && label_ok(e->labels[k])) snprintf(name, sizeof name, "%s", e->labels[k]);
                else snprintf(name, sizeof name, "LABEL_%d", k);
                if (pass) PEP_CALL_GOTO(rc, add(&j, &used, &cap, "%s\"%s\": %d", k ? ", " : "", name, k));
                else PEP_CALL_GOTO(rc, add(&j, &used, &cap, "%s\"%d\": \"%s\"", k ? ", " : "", k, name));
            }
            PEP_CALL_GOTO(rc, add(&j, &used, &cap, "}"));
        }
    }
    PEP_CALL_GOTO(rc, add(&j, &used, &cap, "\n}\n"));
    PEP_CALL_GOTO(rc, write_text(dir, "config.json", j));
cleanup:
    pep_free(j);
    return rc;
}

/* Writes dir/<sub>/<file> with every PE row (and, with_head, every head row that `rename` maps)
 * under rename's names; *sub gets the folder. */
static int write_pe_tensors(const char *dir, const char *subname, const char *file, const struct pep_hf_export *e,
                            int (*rename)(const char *, char *, size_t), int with_head, char *sub, size_t sublen)
{
    struct st_list l = {0};
    char path[4200], name[256];
    int rc = PEP_OK;
    PEP_CALL(join(sub, sublen, dir, subname));
    PEP_CALL(make_dir(sub));
    for (int r = 0; r < e->table->count; r++) {
        const struct pep_param *p = &e->table->rows[r];
        int pe = p->group == PEP_GROUP_PE;
        if (!pe && !(with_head && p->group == PEP_GROUP_HEAD)) continue;
        if (rename(p->name, name, sizeof name) == 0) PEP_CALL_GOTO(rc, list_add(&l, name, p, e->params + p->offset));
        else PEP_CHECK_GOTO(rc, !pe, PEP_ERR_INTERNAL, "PE row '%s' has no name in %s/%s", p->name, subname, file);
    }
    PEP_CALL_GOTO(rc, join(path, sizeof path, sub, file));
    PEP_CALL_GOTO(rc, pep_safetensors_write(path, l.t, l.n, ST_META, 1));
cleanup:
    list_free(&l);
    return rc;
}

static int write_lora(const char *dir, const struct pep_hf_export *e)
{
    const struct pep_model_spec *s = e->spec;
    char sub[4096], cfg[2048];
    PEP_CALL(write_pe_tensors(dir, "peft", "adapter_model.safetensors", e, pep_hf_peft_name, 1, sub, sizeof sub));
    snprintf(cfg, sizeof cfg,
             "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"TOKEN_CLS\",\n  \"base_model_name_or_path\": \"%s\",\n"
             "  \"r\": %d,\n  \"lora_alpha\": %.9g,\n  \"lora_dropout\": 0.0,\n  \"target_modules\": [\"query\", \"value\"],\n"
             "  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"modules_to_save\": [\"classifier\"],\n"
             "  \"use_rslora\": false,\n  \"use_dora\": false,\n  \"init_lora_weights\": true,\n  \"inference_mode\": true,\n"
             "  \"layers_to_transform\": null,\n  \"layers_pattern\": null,\n  \"rank_pattern\": {},\n"
             "  \"alpha_pattern\": {},\n  \"revision\": null\n}\n",
             label_ok(dir) ? dir : "..", s->lora_rank, (double)s->lora_alpha);
    return write_text(sub, "adapter_config.json", cfg);
}

static int adapterhub_name(const char *name, char *out, size_t len)
{
    return pep_hf_adapterhub_name(name, PEP_HF_ADAPTER_NAME, out, len);
}

static int write_adapters(const char *dir, const struct pep_hf_export *e)
{
    const struct pep_model_spec *s = e->spec;
    char sub[4096];
    PEP_CALL(write_pe_tensors(dir, "adapterhub", "adapter.safetensors", e, adapterhub_name, 0, sub, sizeof sub));
    /* the activation's name is AdapterHub's non_linearity name too */
    const char *act = pep_activation_name(s->adapter_act);
    int houlsby = s->placement == PEP_ADAPTER_PLACEMENT_HOULSBY;
    char cfg[3072];
    /* peprime's adapters sit on the sub-layer output before the residual + LayerNorm in both
     * placements: AdapterHub's bottleneck with original_ln_before = false (its Houlsby
     * layout), mh_adapter for the attention adapter */
    snprintf(cfg, sizeof cfg,
             "{\n  \"name\": \"%s\",\n  \"model_type\": \"xlm-roberta\",\n  \"model_name\": \"%s\",\n"
             "  \"model_class\": \"XLMRobertaForTokenClassification\",\n  \"hidden_size\": %d,\n"
             "  \"config\": {\n    \"architecture\": \"bottleneck\",\n    \"mh_adapter\": %s,\n"
             "    \"output_adapter\": true,\n    \"reduction_factor\": %.9g,\n    \"non_linearity\": \"%s\",\n"
             "    \"original_ln_before\": false,\n    \"original_ln_after\": true,\n    \"residual_before_ln\": true,\n"
             "    \"adapter_residual_before_ln\": false,\n    \"ln_before\": false,\n    \"ln_after\": false,\n"
             "    \"init_weights\": \"bert\",\n    \"is_parallel\": false,\n    \"scaling\": 1.0,\n"
             "    \"use_gating\": false,\n    \"dropout\": 0.0,\n    \"inv_adapter\": null,\n"
             "    \"inv_adapter_reduction_factor\": null,\n    \"cross_adapter\": false,\n    \"leave_out\": [],\n"
             "    \"phm_layer\": false\n  },\n  \"peprime_placement\": \"%s\"\n}\n",
             PEP_HF_ADAPTER_NAME, label_ok(dir) ? dir : "..", s->C, houlsby ? "true" : "false",
             (double)s->C / (double)s->bottleneck, act, pep_adapter_placement_name(s->placement));
    return write_text(sub, "adapter_config.json", cfg);
}

static int write_prefix(const char *dir, const struct pep_hf_export *e)
{
    const struct pep_model_spec *s = e->spec;
    struct st_list l = {0};
    char sub[4096], path[4200];
    float *pkv = NULL;
    int rc = PEP_OK;
    size_t P = (size_t)s->prefix_len, C = (size_t)s->C, L = (size_t)s->L;
    PEP_CHECK(!s->prefix_reparam, PEP_ERR_USAGE, "export the flat prefixes (pep_model_eject_prefix first)");
    PEP_CALL(join(sub, sizeof sub, dir, "prefix"));
    PEP_CALL(make_dir(sub));
    /* peft's PREFIX_TUNING prompt_embeddings (P, 2 L C): layer l's keys in columns [2 l C, 2 l C + C),
     * values in [(2 l + 1) C, (2 l + 2) C) */
    PEP_ALLOC(pkv, P * 2 * L * C);
    for (int r = 0; r < e->table->count; r++) {
        const struct pep_param *p = &e->table->rows[r];
        if (p->group != PEP_GROUP_PE) continue;
        const char *rest;
        int layer = pep_hf_layer_index(p->name, &rest), kv = !strcmp(rest, "attention.self.prefix_value");
        PEP_CHECK_GOTO(rc, layer >= 0 && (kv || !strcmp(rest, "attention.self.prefix_key")) && p->numel == P * C,
                       PEP_ERR_INTERNAL, "unexpected prefix row '%s'", p->name);
        PEP_CALL_GOTO(rc, list_add(&l, p->name, p, e->params + p->offset));
        for (size_t i = 0; i < P; i++)
            memcpy(pkv + i * 2 * L * C + (2 * (size_t)layer + (size_t)kv) * C, e->params + p->offset + i * C,
                   C * sizeof(float));
    }
    struct pep_param whole = {.ndim = 2, .shape = {P, 2 * L * C}};
    PEP_CALL_GOTO(rc, list_add(&l, "prompt_embeddings", &whole, pkv));
    PEP_CALL_GOTO(rc, join(path, sizeof path, sub, "prefix.safetensors"));
    PEP_CALL_GOTO(rc, pep_safetensors_write(path, l.t, l.n, ST_META, 1));
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\n  \"format\": \"peprime-prefix-1\",\n  \"num_virtual_tokens\": %zu,\n  \"num_layers\": %zu,\n"
             "  \"hidden_size\": %zu,\n  \"num_attention_heads\": %d,\n"
             "  \"layout\": \"docs/export-hf.md: keys and values in projected space, prepended per layer; "
             "positions of the real tokens are not shifted\"\n}\n",
             P, L, C, s->NH);
    PEP_CALL_GOTO(rc, write_text(sub, "prefix_config.json", cfg));
cleanup:
    pep_free(pkv);
    list_free(&l);
    return rc;
}

int pep_hf_export(const char *dir, const struct pep_hf_export *e, char *written, size_t len)
{
    const struct pep_model_spec *s = e->spec;
    struct st_list l = {0};
    char path[4096], name[256];
    int rc = PEP_OK;
    PEP_CHECK(s->head == PEP_HEAD_KIND_MLM || s->ntags >= 1, PEP_ERR_USAGE,
              "the model has no head (an import-hf --drop-heads base?): export-hf writes a token-classification or "
              "masked-LM model");
    FILE *spm = fopen(e->spm_path, "rb"); /* before anything is written: no half export */
    PEP_CHECK(spm, PEP_ERR_IO, "cannot read the tokenizer '%s': %s (give it with --spm)", e->spm_path, strerror(errno));
    fclose(spm);
    PEP_CALL(make_dir(dir));
    for (int r = 0; r < e->table->count; r++) {
        const struct pep_param *p = &e->table->rows[r];
        if (p->group == PEP_GROUP_PE) continue;
        PEP_CHECK_GOTO(rc, pep_hf_export_name(p->name, name, sizeof name) == 0, PEP_ERR_INTERNAL,
                       "row '%s' has no Hugging Face name", p->name);
        PEP_CALL_GOTO(rc, list_add(&l, name, p, e->params + p->offset));
    }
    PEP_CALL_GOTO(rc, join(path, sizeof path, dir, "model.safetensors"));
    PEP_CALL_GOTO(rc, pep_safetensors_write(path, l.t, l.n, ST_META, 1));
    PEP_CALL_GOTO(rc, write_config(dir, e));
    PEP_CALL_GOTO(rc, copy_file(e->spm_path, dir, "sentencepiece.bpe.model"));
    PEP_CALL_GOTO(rc, write_text(dir, "tokenizer_config.json",
                                 "{\n  \"tokenizer_class\": \"XLMRobertaTokenizer\",\n  \"bos_token\": \"<s>\",\n"
                                 "  \"eos_token\": \"</s>\",\n  \"sep_token\": \"</s>\",\n  \"cls_token\": \"<s>\",\n"
                                 "  \"unk_token\": \"<unk>\",\n  \"pad_token\": \"<pad>\",\n  \"mask_token\": \"<mask>\"\n}\n"));
    const char *pe = "no PE modules";
    if (s->pe == PEP_PE_METHOD_LORA) {
        PEP_CALL_GOTO(rc, write_lora(dir, e));
        pe = "peft/ (LoRA)";
    } else if (s->pe == PEP_PE_METHOD_ADAPTER) {
        PEP_CALL_GOTO(rc, write_adapters(dir, e));
        pe = "adapterhub/ (adapters)";
    } else if (s->pe == PEP_PE_METHOD_PREFIX) {
        PEP_CALL_GOTO(rc, write_prefix(dir, e));
        pe = "prefix/ (prefixes)";
    }
    if (written)
        snprintf(written, len, "%s: model.safetensors (%d tensors, %s), config.json, sentencepiece.bpe.model; %s",
                 dir, l.n, s->head == PEP_HEAD_KIND_TAGGER ? "XLMRobertaForTokenClassification" : "XLMRobertaForMaskedLM",
                 pe);
cleanup:
    list_free(&l);
    return rc;
}
