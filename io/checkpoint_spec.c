/* The model shape in a checkpoint's root attributes (checkpoint.h lists them): written with
 * the header, read back into pep_ckpt_info, and compared with the shape a stage expects. */
#include <stdint.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/error.h"

static const char *head_name(enum pep_head_kind h) { return h == PEP_HEAD_KIND_MLM ? "mlm" : "tagger"; }
static const char *pe_name(enum pep_pe_method m)
{
    switch (m) {
    case PEP_PE_METHOD_ADAPTER: return "adapter";
    case PEP_PE_METHOD_PREFIX: return "prefix";
    case PEP_PE_METHOD_LORA: return "lora";
    default: return "none";
    }
}
static const char *placement_name(enum pep_adapter_placement p)
{
    return p == PEP_ADAPTER_PLACEMENT_HOULSBY ? "houlsby" : "pfeiffer";
}
static const char *act_name(enum pep_activation a)
{
    return a == PEP_ACTIVATION_GELU ? "gelu" : a == PEP_ACTIVATION_SWISH ? "swish" : "relu";
}

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
    PEP_CALL(ck_attr_str(root, "head", head_name(s->head)));
    PEP_CALL(ck_attr_str(root, "pe_method", pe_name(s->pe)));
    PEP_CALL(ck_attr_str(root, "pe_placement", placement_name(s->placement)));
    PEP_CALL(ck_attr_str(root, "pe_activation", act_name(s->adapter_act)));
    PEP_CALL(ck_attr_i32(root, "pe_bottleneck", s->bottleneck));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_length", s->prefix_len));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_reparam", s->prefix_reparam));
    PEP_CALL(ck_attr_i32(root, "pe_prefix_hidden", s->prefix_hidden));
    PEP_CALL(ck_attr_i32(root, "pe_lora_rank", s->lora_rank));
    PEP_CALL(ck_attr_f64(root, "pe_lora_alpha", s->lora_alpha));
    PEP_CALL(ck_attr_f64(root, "layer_norm_eps", s->ln_eps));
    return PEP_OK;
}

static int spec_enum(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
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
    char buf[64];
    static const char *const heads[] = {"tagger", "mlm"}, *const pes[] = {"none", "adapter", "prefix", "lora"},
                             *const pls[] = {"pfeiffer", "houlsby"}, *const acts[] = {"relu", "gelu", "swish"};
    int e;
    PEP_CALL(ck_attr_read_str_buf(root, f, "/", "head", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, heads, 2)) >= 0, PEP_ERR_FORMAT, "%s: unknown head '%s'", f, buf);
    s->head = e == 1 ? PEP_HEAD_KIND_MLM : PEP_HEAD_KIND_TAGGER;
    PEP_CALL(ck_attr_read_str_buf(root, f, "/", "pe_method", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, pes, 4)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_method '%s'", f, buf);
    s->pe = e == 1 ? PEP_PE_METHOD_ADAPTER : e == 2 ? PEP_PE_METHOD_PREFIX : e == 3 ? PEP_PE_METHOD_LORA : PEP_PE_METHOD_NONE;
    PEP_CALL(ck_attr_read_str_buf(root, f, "/", "pe_placement", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, pls, 2)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_placement '%s'", f, buf);
    s->placement = e == 1 ? PEP_ADAPTER_PLACEMENT_HOULSBY : PEP_ADAPTER_PLACEMENT_PFEIFFER;
    PEP_CALL(ck_attr_read_str_buf(root, f, "/", "pe_activation", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, acts, 3)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_activation '%s'", f, buf);
    s->adapter_act = e == 1 ? PEP_ACTIVATION_GELU : e == 2 ? PEP_ACTIVATION_SWISH : PEP_ACTIVATION_RELU;
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
              r->path, head_name(f->head), head_name(s->head));
    if (s->head == PEP_HEAD_KIND_TAGGER) SPEC_INT(ntags, "ntags", "data.tags");
    PEP_CHECK(f->pe == s->pe, PEP_ERR_FORMAT, "%s: the checkpoint has pe_method = %s, the config expects %s (pe.method)",
              r->path, pe_name(f->pe), pe_name(s->pe));
    if (s->pe == PEP_PE_METHOD_ADAPTER) {
        PEP_CHECK(f->placement == s->placement, PEP_ERR_FORMAT,
                  "%s: the checkpoint has pe_placement = %s, the config expects %s (pe.placement)", r->path,
                  placement_name(f->placement), placement_name(s->placement));
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
