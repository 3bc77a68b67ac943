/* The model shape in a checkpoint's root attributes (checkpoint.h lists them): written with
 * the header, read back into pep_ckpt_info, and compared with the shape a stage expects. */
#include <stdint.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/error.h"

int ck_write_spec(hid_t root, const struct pep_model_spec *s)
{
    PEP_CALL(ck_attr_i32(root, "layers", s->L));
    PEP_CALL(ck_attr_i32(root, "hidden", s->C));
    PEP_CALL(ck_attr_i32(root, "heads", s->NH));
    PEP_CALL(ck_attr_i32(root, "ff", s->FF));
    PEP_CALL(ck_attr_i32(root, "vocab", s->V));
    PEP_CALL(ck_attr_i32(root, "max_positions", s->max_positions));
    PEP_CALL(ck_attr_i32(root, "type_vocab", s->type_vocab));
    PEP_CALL(ck_attr_i32(root, "ntags", s->ntags));
    /* the enums' one name tables (model/kinds.h, layers/activation.h): these strings are the format */
    PEP_CALL(ck_attr_str(root, "head", pep_head_kind_name(s->head)));
    PEP_CALL(ck_attr_str(root, "pe_method", pep_pe_method_name(s->pe)));
    PEP_CALL(ck_attr_str(root, "pe_placement", pep_adapter_placement_name(s->placement)));
    PEP_CALL(ck_attr_str(root, "pe_activation", pep_activation_name(s->adapter_act)));
    PEP_CALL(ck_attr_i32(root, "pe_bottleneck", s->bottleneck));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_length", s->prefix_len));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_reparam", s->prefix_reparam));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_hidden", s->prefix_hidden));
    PEP_CALL(ck_attr_i32(root, "pe_lora_rank", s->lora_rank));
    PEP_CALL(ck_attr_f64(root, "pe_lora_alpha", s->lora_alpha));
    PEP_CALL(ck_attr_f64(root, "layer_norm_eps", s->ln_eps));
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
    const char *f = r->path;
    int32_t v[13];
    static const char *const keys[13] = {"layers", "hidden", "heads", "ff", "vocab", "max_positions", "type_vocab",
                                         "ntags", "pe_bottleneck", "pe_prefix_length", "pe_prefix_reparam",
                                         "pe_prefix_hidden", "pe_lora_rank"};
    for (int i = 0; i < 13; i++) PEP_CALL(ck_attr_read_num(root, f, "/", keys[i], H5T_NATIVE_INT32, &v[i]));
    s->L = v[0], s->C = v[1], s->NH = v[2], s->FF = v[3], s->V = v[4], s->max_positions = v[5];
    s->type_vocab = v[6], s->ntags = v[7], s->bottleneck = v[8], s->prefix_len = v[9];
    s->prefix_reparam = v[10], s->prefix_hidden = v[11], s->lora_rank = v[12];
    double a, eps;
    PEP_CALL(ck_attr_read_num(root, f, "/", "pe_lora_alpha", H5T_NATIVE_DOUBLE, &a));
    PEP_CALL(ck_attr_read_num(root, f, "/", "layer_norm_eps", H5T_NATIVE_DOUBLE, &eps));
    s->lora_alpha = (float)a;
    s->ln_eps = (float)eps;
    int head, pe, placement, act;
    PEP_CALL(read_spec_name(root, f, "head", &pep_head_kind_names, &head));
    PEP_CALL(read_spec_name(root, f, "pe_method", &pep_pe_method_names, &pe));
    PEP_CALL(read_spec_name(root, f, "pe_placement", &pep_adapter_placement_names, &placement));
    PEP_CALL(read_spec_name(root, f, "pe_activation", &pep_activation_names, &act));
    s->head = (enum pep_head_kind)head, s->pe = (enum pep_pe_method)pe;
    s->placement = (enum pep_adapter_placement)placement, s->adapter_act = (enum pep_activation)act;
    r->info.has_spec = 1;
    return PEP_OK;
}

int pep_ckpt_check_spec(const struct pep_ckpt_reader *r, const struct pep_model_spec *s)
{
    const struct pep_model_spec *f = &r->info.spec;
    PEP_CHECK(r->info.has_spec, PEP_ERR_FORMAT, "%s: the checkpoint stores no model shape attributes", r->path);
#define SPEC_INT(field, name, key)                                                                               \
    PEP_CHECK(f->field == s->field, PEP_ERR_FORMAT,                                                              \
              "%s: the checkpoint has %s = %d, the config expects %d (%s): use a matching config or checkpoint", \
              r->path, name, f->field, s->field, key)
    SPEC_INT(L, "layers", "model.layers");
    SPEC_INT(C, "hidden", "model.hidden");
    SPEC_INT(NH, "heads", "model.heads");
    SPEC_INT(FF, "ff", "model.ff");
    SPEC_INT(V, "vocab", "model.vocab / the tokenizer");
    SPEC_INT(max_positions, "max_positions", "model.max_positions");
    SPEC_INT(type_vocab, "type_vocab", "model.type_vocab");
    PEP_CHECK(f->head == s->head, PEP_ERR_FORMAT, "%s: the checkpoint has a %s head, the stage expects a %s head",
              r->path, pep_head_kind_name(f->head), pep_head_kind_name(s->head));
    if (s->head == PEP_HEAD_KIND_TAGGER) SPEC_INT(ntags, "ntags", "data.tags");
    PEP_CHECK(f->pe == s->pe, PEP_ERR_FORMAT, "%s: the checkpoint has pe_method = %s, the config expects %s (pe.method)",
              r->path, pep_pe_method_name(f->pe), pep_pe_method_name(s->pe));
    if (s->pe == PEP_PE_METHOD_ADAPTER) {
        PEP_CHECK(f->placement == s->placement, PEP_ERR_FORMAT,
                  "%s: the checkpoint has pe_placement = %s, the config expects %s (pe.placement)", r->path,
                  pep_adapter_placement_name(f->placement), pep_adapter_placement_name(s->placement));
        SPEC_INT(bottleneck, "pe_bottleneck", "pe.reduction");
    } else if (s->pe == PEP_PE_METHOD_PREFIX) {
        SPEC_INT(prefix_len, "pe_prefix_length", "pe.prefix_length");
        SPEC_INT(prefix_reparam, "pe_prefix_reparam", "pe.prefix_reparam");
        if (s->prefix_reparam) SPEC_INT(prefix_hidden, "pe_prefix_hidden", "pe.prefix_hidden");
    } else if (s->pe == PEP_PE_METHOD_LORA) {
        SPEC_INT(lora_rank, "pe_lora_rank", "pe.lora_rank");
    }
#undef SPEC_INT
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
