/* The name tables of the model's PE method, adapter placement and head kind (kinds.h). The
 * entries are in the order messages list the choices. */
#include "model/kinds.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct pep_name pe_methods[] = {
    {PEP_PE_METHOD_ADAPTER, "adapter"},
    {PEP_PE_METHOD_PREFIX, "prefix"},
    {PEP_PE_METHOD_LORA, "lora"},
    {PEP_PE_METHOD_NONE, "none"},
};
const struct pep_names pep_pe_method_names = {"PE method", pe_methods, COUNT(pe_methods)};

static const struct pep_name placements[] = {
    {PEP_ADAPTER_PLACEMENT_PFEIFFER, "pfeiffer"},
    {PEP_ADAPTER_PLACEMENT_HOULSBY, "houlsby"},
};
const struct pep_names pep_adapter_placement_names = {"adapter placement", placements, COUNT(placements)};

static const struct pep_name heads[] = {
    {PEP_HEAD_KIND_TAGGER, "tagger"},
    {PEP_HEAD_KIND_MLM, "mlm"},
};
const struct pep_names pep_head_kind_names = {"head", heads, COUNT(heads)};
