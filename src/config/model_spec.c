/* The model spec from the config (config.h): shape, limits, head and PE settings. */
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "model/model.h"

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
    /* the config's setter admitted only the tables' names */
    PEP_CHECK(pep_pe_method_parse(cfg->pe.method, &spec->pe) == 0 &&
                  pep_adapter_placement_parse(cfg->pe.placement, &spec->placement) == 0 &&
                  pep_activation_parse(cfg->pe.activation, &spec->adapter_act) == 0,
              PEP_ERR_USAGE, "pe.method = '%s', pe.placement = '%s', pe.activation = '%s': one is not a known name",
              cfg->pe.method, cfg->pe.placement, cfg->pe.activation);
    spec->bottleneck = cfg->model.hidden / cfg->pe.reduction;
    spec->prefix_len = cfg->pe.prefix_length;
    spec->prefix_reparam = cfg->pe.prefix_reparam;
    spec->prefix_hidden = cfg->pe.prefix_hidden;
    spec->lora_rank = cfg->pe.lora_rank;
    spec->lora_alpha = cfg->pe.lora_alpha;
    return PEP_OK;
}
