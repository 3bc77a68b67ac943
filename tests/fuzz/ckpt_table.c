/* The checkpoint seed's parameter table and spec (ckpt_table.h). */
#include "ckpt_table.h"

#include <string.h>

#include "core/error.h"

int fuzz_ckpt_table(struct pep_param_table *t)
{
    pep_param_table_init(t);
    PEP_CALL(pep_param_table_add(t, "embeddings.word_embeddings.weight", PEP_GROUP_PLM, 2, 3, 2, NULL));
    PEP_CALL(pep_param_table_add(t, "encoder.layer.0.output.adapter.adapter_up.bias", PEP_GROUP_PE, 1, 2, 0, NULL));
    PEP_CALL(pep_param_table_add(t, "classifier.bias", PEP_GROUP_HEAD, 1, 2, 0, NULL));
    return PEP_OK;
}

void fuzz_ckpt_spec(struct pep_model_spec *s)
{
    memset(s, 0, sizeof *s);
    s->L = 1, s->C = 2, s->NH = 1, s->FF = 4, s->V = 3, s->max_positions = 4, s->type_vocab = 1, s->ntags = 2;
    s->ln_eps = 1e-5f, s->head = PEP_HEAD_KIND_TAGGER, s->pe = PEP_PE_METHOD_ADAPTER;
    s->placement = PEP_ADAPTER_PLACEMENT_PFEIFFER, s->adapter_act = PEP_ACTIVATION_RELU, s->bottleneck = 1;
}
