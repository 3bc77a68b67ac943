/* Hugging Face <-> peprime tensor name mapping, and the peft / AdapterHub names of PE rows (hf_names.h). */
#include "hf_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Sub-modules of one encoder layer that carry a weight and a bias (docs/model.md). */
static const char *const layer_modules[] = {
    "attention.self.query", "attention.self.key",    "attention.self.value", "attention.output.dense",
    "attention.output.LayerNorm", "intermediate.dense", "output.dense",        "output.LayerNorm",
};

int pep_hf_layer_index(const char *name, const char **rest)
{
    if (!starts(name, "encoder.layer.")) return -1;
    const char *p = name + strlen("encoder.layer.");
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    long n = 0;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p - '0');
        if (n > 100000) return -1;
        p++;
    }
    if (*p != '.') return -1;
    if (rest) *rest = p + 1;
    return (int)n;
}

/* Is `name` one of the parameter names peprime's encoder + heads use? */
static int is_known(const char *name)
{
    static const char *const fixed[] = {
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
        "classifier.weight", "classifier.bias", "lm_head.dense.weight", "lm_head.dense.bias",
        "lm_head.layer_norm.weight", "lm_head.layer_norm.bias", "lm_head.bias",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(name, fixed[i]) == 0) return 1;
    const char *rest;
    if (pep_hf_layer_index(name, &rest) < 0) return 0;
    for (size_t i = 0; i < sizeof layer_modules / sizeof layer_modules[0]; i++) {
        size_t k = strlen(layer_modules[i]);
        if (strncmp(rest, layer_modules[i], k) == 0 && (strcmp(rest + k, ".weight") == 0 || strcmp(rest + k, ".bias") == 0))
            return 1;
    }
    return 0;
}

static enum pep_hf_name_kind put(char *out, size_t len, const char *a, const char *b, enum pep_hf_name_kind kind)
{
    if ((size_t)snprintf(out, len, "%s%s", a, b) >= len) return PEP_HF_NAME_KIND_UNKNOWN;
    return kind;
}

enum pep_hf_name_kind pep_hf_map_name(const char *hf, char *out, size_t len, const char **note)
{
    const char *dummy;
    if (!note) note = &dummy;
    *note = NULL;
    if (len) out[0] = '\0';
    const char *n = hf;
    if (starts(n, "roberta.")) n += strlen("roberta.");
    else if (starts(n, "bert.")) n += strlen("bert.");

    if (strcmp(n, "embeddings.position_ids") == 0) {
        *note = "position-id buffer, not a parameter (peprime computes XLM-R positions itself)";
        return PEP_HF_NAME_KIND_IGNORED;
    }
    if (starts(n, "pooler.")) {
        *note = "pooler (sentence-level head), not used for tagging";
        return PEP_HF_NAME_KIND_IGNORED;
    }
    if (starts(hf, "cls.seq_relationship.")) {
        *note = "BERT next-sentence head, not used";
        return PEP_HF_NAME_KIND_IGNORED;
    }
    if (strcmp(hf, "lm_head.decoder.weight") == 0 || strcmp(hf, "cls.predictions.decoder.weight") == 0) {
        *note = "MLM decoder, tied to the word embeddings";
        return put(out, len, "embeddings.word_embeddings.weight", "", PEP_HF_NAME_KIND_TIED);
    }
    if (strcmp(hf, "lm_head.decoder.bias") == 0 || strcmp(hf, "cls.predictions.decoder.bias") == 0) {
        *note = "MLM decoder bias, tied to lm_head.bias";
        return put(out, len, "lm_head.bias", "", PEP_HF_NAME_KIND_TIED_BIAS);
    }

    char buf[256];
    if ((size_t)snprintf(buf, sizeof buf, "%s", n) >= sizeof buf) {
        *note = "name too long";
        return PEP_HF_NAME_KIND_UNKNOWN;
    }
    /* BERT's MLM head spelling */
    if (starts(buf, "cls.predictions.")) {
        const char *r = hf + strlen("cls.predictions.");
        char tmp[256];
        if (starts(r, "transform.dense.")) snprintf(tmp, sizeof tmp, "lm_head.dense.%s", r + strlen("transform.dense."));
        else if (starts(r, "transform.LayerNorm."))
            snprintf(tmp, sizeof tmp, "lm_head.layer_norm.%s", r + strlen("transform.LayerNorm."));
        else if (strcmp(r, "bias") == 0) snprintf(tmp, sizeof tmp, "lm_head.bias");
        else snprintf(tmp, sizeof tmp, "%s", buf);
        memcpy(buf, tmp, sizeof buf);
    }
    /* old LayerNorm names: .gamma -> .weight, .beta -> .bias */
    if (ends(buf, "LayerNorm.gamma") || ends(buf, "layer_norm.gamma")) strcpy(buf + strlen(buf) - strlen("gamma"), "weight");
    else if (ends(buf, "LayerNorm.beta") || ends(buf, "layer_norm.beta")) strcpy(buf + strlen(buf) - strlen("beta"), "bias");

    if (is_known(buf)) return put(out, len, buf, "", PEP_HF_NAME_KIND_PARAM);
    if (starts(buf, "classifier.")) *note = "not a token-classification head (sequence classifier?)";
    else *note = "not a tensor of an XLM-R / BERT encoder with a token-classification or MLM head";
    return PEP_HF_NAME_KIND_UNKNOWN;
}

int pep_hf_export_name(const char *name, char *out, size_t len)
{
    const char *prefix = starts(name, "embeddings.") || starts(name, "encoder.layer.") ? "roberta." : "";
    if ((size_t)snprintf(out, len, "%s%s", prefix, name) >= len) return -1;
    /* the importer must map the name back to this row: one table for both directions */
    char back[256];
    if (pep_hf_map_name(out, back, sizeof back, NULL) != PEP_HF_NAME_KIND_PARAM || strcmp(back, name) != 0) return -1;
    return 0;
}

int pep_hf_peft_name(const char *name, char *out, size_t len)
{
    const char *rest;
    int ok = 0;
    if (starts(name, "classifier.")) ok = 1;
    else if (pep_hf_layer_index(name, &rest) >= 0)
        ok = (starts(rest, "attention.self.query.lora_") || starts(rest, "attention.self.value.lora_")) &&
             (ends(rest, ".lora_A") || ends(rest, ".lora_B"));
    if (!ok) return -1;
    const char *prefix = starts(name, "classifier.") ? "base_model.model." : "base_model.model.roberta.";
    const char *suffix = starts(name, "classifier.") ? "" : ".weight";
    return (size_t)snprintf(out, len, "%s%s%s", prefix, name, suffix) < len ? 0 : -1;
}

int pep_hf_adapterhub_name(const char *name, const char *adapter, char *out, size_t len)
{
    const char *rest;
    int l = pep_hf_layer_index(name, &rest);
    if (l < 0) return -1;
    const char *where = starts(rest, "output.adapter.") ? "output" : starts(rest, "attention.output.adapter.") ? "attention.output" : NULL;
    if (!where) return -1;
    const char *leaf = rest + strlen(where) + strlen(".adapter.");
    const char *mapped = !strcmp(leaf, "adapter_down.weight") ? "adapter_down.0.weight"
                         : !strcmp(leaf, "adapter_down.bias") ? "adapter_down.0.bias"
                         : !strcmp(leaf, "adapter_up.weight") ? "adapter_up.weight"
                         : !strcmp(leaf, "adapter_up.bias")   ? "adapter_up.bias"
                                                              : NULL;
    if (!mapped) return -1;
    return (size_t)snprintf(out, len, "roberta.encoder.layer.%d.%s.adapters.%s.%s", l, where, adapter, mapped) < len ? 0
                                                                                                                 : -1;
}
