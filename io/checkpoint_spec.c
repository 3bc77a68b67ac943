/* The model shape in a checkpoint's root attributes (checkpoint.h lists them): one table
 * (attribute, field, type, name table, when compared) drives writing them with the header,
 * reading them back into pep_ckpt_info, and comparing them with the shape a stage expects. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/error.h"

/* When a shape attribute is compared: f is the file's shape, s the one the stage expects. */
static int always(const struct pep_model_spec *f, const struct pep_model_spec *s) { return 1; }
static int tagger(const struct pep_model_spec *f, const struct pep_model_spec *s)
{
    return f->head == PEP_HEAD_KIND_TAGGER && s->head == PEP_HEAD_KIND_TAGGER;
}
static int adapter(const struct pep_model_spec *f, const struct pep_model_spec *s) { return s->pe == PEP_PE_METHOD_ADAPTER; }
static int prefix(const struct pep_model_spec *f, const struct pep_model_spec *s) { return s->pe == PEP_PE_METHOD_PREFIX; }
static int reparam(const struct pep_model_spec *f, const struct pep_model_spec *s) { return prefix(f, s) && s->prefix_reparam; }
static int lora(const struct pep_model_spec *f, const struct pep_model_spec *s) { return s->pe == PEP_PE_METHOD_LORA; }

enum spec_type {
    SPEC_TYPE_I32,  /* int field, int32 attribute */
    SPEC_TYPE_F32,  /* float field, float64 attribute */
    SPEC_TYPE_NAME, /* enum field, string attribute from the enum's one name table (these strings are the format) */
};

_Static_assert(sizeof(enum pep_head_kind) == sizeof(int) && sizeof(enum pep_pe_method) == sizeof(int) &&
                   sizeof(enum pep_adapter_placement) == sizeof(int) && sizeof(enum pep_activation) == sizeof(int),
               "the name rows read and write the enum fields as int");

/* One row per root attribute, in the order they are written: the table drives write, read and check. */
static const struct spec_attr {
    const char *key;
    size_t offset; /* in struct pep_model_spec */
    enum spec_type type;
    const struct pep_names *names; /* SPEC_TYPE_NAME */
    /* compared by pep_ckpt_check_spec when `when` says so (NULL: never), naming `setting` */
    int (*when)(const struct pep_model_spec *f, const struct pep_model_spec *s);
    const char *setting;
} spec_attrs[] = {
#define ROW(key, field, type, names, when, setting) {key, offsetof(struct pep_model_spec, field), type, names, when, setting}
    ROW("layers", L, SPEC_TYPE_I32, NULL, always, "model.layers"),
    ROW("hidden", C, SPEC_TYPE_I32, NULL, always, "model.hidden"),
    ROW("heads", NH, SPEC_TYPE_I32, NULL, always, "model.heads"),
    ROW("ff", FF, SPEC_TYPE_I32, NULL, always, "model.ff"),
    ROW("vocab", V, SPEC_TYPE_I32, NULL, always, "model.vocab / the tokenizer"),
    ROW("max_positions", max_positions, SPEC_TYPE_I32, NULL, always, "model.max_positions"),
    ROW("type_vocab", type_vocab, SPEC_TYPE_I32, NULL, always, "model.type_vocab"),
    ROW("ntags", ntags, SPEC_TYPE_I32, NULL, tagger, "data.tags"),
    ROW("head", head, SPEC_TYPE_NAME, &pep_head_kind_names, always, "the head: mlm after pretrain, tagger after the others"),
    ROW("pe_method", pe, SPEC_TYPE_NAME, &pep_pe_method_names, always, "pe.method"),
    ROW("pe_placement", placement, SPEC_TYPE_NAME, &pep_adapter_placement_names, adapter, "pe.placement"),
    ROW("pe_activation", adapter_act, SPEC_TYPE_NAME, &pep_activation_names, NULL, NULL),
    ROW("pe_bottleneck", bottleneck, SPEC_TYPE_I32, NULL, adapter, "pe.reduction"),
    ROW("pe_prefix_length", prefix_len, SPEC_TYPE_I32, NULL, prefix, "pe.prefix_length"),
    ROW("pe_prefix_reparam", prefix_reparam, SPEC_TYPE_I32, NULL, prefix, "pe.prefix_reparam"),
    ROW("pe_prefix_hidden", prefix_hidden, SPEC_TYPE_I32, NULL, reparam, "pe.prefix_hidden"),
    ROW("pe_lora_rank", lora_rank, SPEC_TYPE_I32, NULL, lora, "pe.lora_rank"),
    ROW("pe_lora_alpha", lora_alpha, SPEC_TYPE_F32, NULL, NULL, NULL),
    ROW("layer_norm_eps", ln_eps, SPEC_TYPE_F32, NULL, NULL, NULL),
#undef ROW
};
#define N_SPEC_ATTRS (sizeof spec_attrs / sizeof spec_attrs[0])

static int *spec_int(const struct pep_model_spec *s, const struct spec_attr *a)
{
    return (int *)((char *)s + a->offset);
}
static float *spec_float(const struct pep_model_spec *s, const struct spec_attr *a)
{
    return (float *)((char *)s + a->offset);
}

int ck_write_spec(hid_t root, const struct pep_model_spec *s)
{
    for (size_t i = 0; i < N_SPEC_ATTRS; i++) {
        const struct spec_attr *a = &spec_attrs[i];
        if (a->type == SPEC_TYPE_I32) PEP_CALL(ck_attr_i32(root, a->key, *spec_int(s, a)));
        else if (a->type == SPEC_TYPE_F32) PEP_CALL(ck_attr_f64(root, a->key, *spec_float(s, a)));
        else PEP_CALL(ck_attr_str(root, a->key, pep_names_name(a->names, *spec_int(s, a))));
    }
    return PEP_OK;
}

/* *value = the enum named by string attribute `key`, from its name table. */
static int read_spec_name(hid_t root, const char *f, const char *key, const struct pep_names *t, int *value)
{
    char buf[64], valid[128];
    PEP_CALL(ck_attr_read_str_buf(root, f, "/", key, buf, sizeof buf));
    if (pep_names_parse(t, buf, value) == 0) return PEP_OK;
    pep_names_list(t, ", ", " or ", valid, sizeof valid);
    PEP_FAIL(PEP_ERR_FORMAT, "%s: unknown %s '%s' (a checkpoint names %s)", f, key, buf, valid);
}

int ck_read_spec(struct pep_ckpt_reader *r, hid_t root)
{
    struct pep_model_spec *s = &r->info.spec;
    for (size_t i = 0; i < N_SPEC_ATTRS; i++) {
        const struct spec_attr *a = &spec_attrs[i];
        if (a->type == SPEC_TYPE_I32) {
            int32_t v;
            PEP_CALL(ck_attr_read_num(root, r->path, "/", a->key, H5T_NATIVE_INT32, &v));
            *spec_int(s, a) = v;
        } else if (a->type == SPEC_TYPE_F32) {
            double v;
            PEP_CALL(ck_attr_read_num(root, r->path, "/", a->key, H5T_NATIVE_DOUBLE, &v));
            *spec_float(s, a) = (float)v;
        } else {
            PEP_CALL(read_spec_name(root, r->path, a->key, a->names, spec_int(s, a)));
        }
    }
    r->info.has_spec = 1;
    return PEP_OK;
}

int pep_ckpt_check_spec(const struct pep_ckpt_reader *r, const struct pep_model_spec *s)
{
    const struct pep_model_spec *f = &r->info.spec;
    PEP_CHECK(r->info.has_spec, PEP_ERR_FORMAT, "%s: the checkpoint stores no model shape attributes", r->path);
    for (size_t i = 0; i < N_SPEC_ATTRS; i++) {
        const struct spec_attr *a = &spec_attrs[i];
        if (!a->when || !a->when(f, s)) continue;
        int have = *spec_int(f, a), want = *spec_int(s, a);
        if (have == want) continue;
        if (a->type == SPEC_TYPE_NAME)
            PEP_FAIL(PEP_ERR_FORMAT, "%s: the checkpoint has %s = %s, the config expects %s (%s)", r->path, a->key,
                     pep_names_name(a->names, have), pep_names_name(a->names, want), a->setting);
        PEP_FAIL(PEP_ERR_FORMAT,
                 "%s: the checkpoint has %s = %d, the config expects %d (%s): use a matching config or checkpoint",
                 r->path, a->key, have, want, a->setting);
    }
    return PEP_OK;
}

int pep_ckpt_read_model(struct pep_ckpt_reader *r, const char *base, struct pep_model **out, unsigned *groups)
{
    *out = NULL;
    const struct pep_ckpt_info *info = pep_ckpt_info(r);
    PEP_CHECK(info->has_spec, PEP_ERR_FORMAT, "%s has no model shape attributes; was it written by peprime?",
              pep_ckpt_path(r));
    struct pep_model_spec spec = info->spec;
    spec.max_B = 1;
    spec.max_T = spec.max_positions - 2 < 8 ? spec.max_positions - 2 : 8; /* no training: small buffers */
    *groups = PEP_GROUPS_ALL;
    if (spec.head == PEP_HEAD_KIND_TAGGER && spec.ntags == 0) { /* a base without a head (import-hf --drop-heads) */
        spec.ntags = 1;
        *groups &= ~PEP_GROUP_BIT(PEP_GROUP_HEAD);
    }
    struct pep_model *m = NULL;
    PEP_CALL(pep_model_create(&spec, &m));
    int rc = pep_ckpt_read_params_based(r, base, &m->table, m->params, *groups);
    if (rc != PEP_OK) pep_model_destroy(&m);
    *out = m;
    return rc;
}
