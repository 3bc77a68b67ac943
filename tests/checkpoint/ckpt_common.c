/* XLM-R-shaped parameter table and deterministic fill for the checkpoint tests (ckpt_common.h). */
#include "ckpt_common.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

static int add(struct pep_param_table *t, enum pep_group g, int ndim, size_t d0, size_t d1, const char *fmt, int l,
               const char *leaf)
{
    char name[2 * PEP_PARAM_NAME_MAX + 64];
    char prefix[64];
    snprintf(prefix, sizeof prefix, fmt, l);
    snprintf(name, sizeof name, "%s%s", prefix, leaf); /* too long: pep_param_table_add says so */
    return pep_param_table_add(t, name, g, ndim, d0, d1, NULL);
}

int ckpt_test_table(struct pep_param_table *t, int L, int C, int FF, int V, int P, int R, int K)
{
    const char *emb = "embeddings."; /* no layer number */
    pep_param_table_init(t);
    PEP_CALL(add(t, PEP_GROUP_PLM, 2, V, C, emb, 0, "word_embeddings.weight"));
    PEP_CALL(add(t, PEP_GROUP_PLM, 2, P, C, emb, 0, "position_embeddings.weight"));
    PEP_CALL(add(t, PEP_GROUP_PLM, 2, 1, C, emb, 0, "token_type_embeddings.weight"));
    PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, emb, 0, "LayerNorm.weight"));
    PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, emb, 0, "LayerNorm.bias"));
    const char *lay = "encoder.layer.%d.";
    for (int l = 0; l < L; l++) {
        static const char *const qkv[] = {"attention.self.query.", "attention.self.key.", "attention.self.value.",
                                          "attention.output.dense."};
        for (int j = 0; j < 4; j++) {
            char leaf[96];
            snprintf(leaf, sizeof leaf, "%sweight", qkv[j]);
            PEP_CALL(add(t, PEP_GROUP_PLM, 2, C, C, lay, l, leaf));
            snprintf(leaf, sizeof leaf, "%sbias", qkv[j]);
            PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, leaf));
        }
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, "attention.output.LayerNorm.weight"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, "attention.output.LayerNorm.bias"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 2, FF, C, lay, l, "intermediate.dense.weight"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, FF, 0, lay, l, "intermediate.dense.bias"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 2, C, FF, lay, l, "output.dense.weight"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, "output.dense.bias"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, "output.LayerNorm.weight"));
        PEP_CALL(add(t, PEP_GROUP_PLM, 1, C, 0, lay, l, "output.LayerNorm.bias"));
    }
    for (int l = 0; l < L; l++) {
        PEP_CALL(add(t, PEP_GROUP_PE, 2, R, C, lay, l, "output.adapter.adapter_down.weight"));
        PEP_CALL(add(t, PEP_GROUP_PE, 1, R, 0, lay, l, "output.adapter.adapter_down.bias"));
        PEP_CALL(add(t, PEP_GROUP_PE, 2, C, R, lay, l, "output.adapter.adapter_up.weight"));
        PEP_CALL(add(t, PEP_GROUP_PE, 1, C, 0, lay, l, "output.adapter.adapter_up.bias"));
    }
    PEP_CALL(pep_param_table_add(t, "classifier.weight", PEP_GROUP_HEAD, 2, K, C, NULL));
    PEP_CALL(pep_param_table_add(t, "classifier.bias", PEP_GROUP_HEAD, 1, K, 0, NULL));
    return PEP_OK;
}

void ckpt_test_spec(struct pep_model_spec *s, int L, int C, int FF, int V, int P, int R, int K)
{
    memset(s, 0, sizeof *s);
    s->L = L, s->C = C, s->NH = C % 64 == 0 ? C / 64 : 2, s->FF = FF, s->V = V, s->max_positions = P;
    s->type_vocab = 1, s->ntags = K, s->ln_eps = 1e-5f, s->head = PEP_HEAD_KIND_TAGGER;
    s->pe = PEP_PE_METHOD_ADAPTER, s->placement = PEP_ADAPTER_PLACEMENT_PFEIFFER;
    s->adapter_act = PEP_ACTIVATION_RELU, s->bottleneck = R;
}

void ckpt_test_fill(const struct pep_param_table *t, float *block, unsigned groups, size_t origin, int base)
{
    for (int r = 0; r < t->count; r++) {
        const struct pep_param *p = &t->rows[r];
        if (!(groups & PEP_GROUP_BIT(p->group))) continue;
        float *x = block + (p->offset - origin);
        float b = (float)(base + r + 1);
        for (size_t i = 0; i < p->numel; i++) x[i] = b + (float)i * 0.001f;
    }
}

size_t ckpt_test_compare(const struct pep_param_table *t, const float *block, unsigned groups, size_t origin,
                         int base)
{
    size_t bad = 0;
    for (int r = 0; r < t->count; r++) {
        const struct pep_param *p = &t->rows[r];
        if (!(groups & PEP_GROUP_BIT(p->group))) continue;
        const float *x = block + (p->offset - origin);
        float b = (float)(base + r + 1);
        for (size_t i = 0; i < p->numel; i++) bad += x[i] != b + (float)i * 0.001f;
    }
    return bad;
}
