/* The name tables of the priming stage's method, inner-loop start and inner optimiser
 * (kinds.h). The entries are in the order messages list the choices. */
#include "maml/kinds.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct pep_name methods[] = {
    {PEP_MAML_METHOD_MAML, "maml"},
    {PEP_MAML_METHOD_MULTITASK, "multitask"},
    {PEP_MAML_METHOD_MULTITASK_MATCHED, "multitask-matched"},
};
const struct pep_names pep_maml_method_names = {"priming method", methods, COUNT(methods)};

static const struct pep_name pe_inits[] = {
    {PEP_MAML_PE_INIT_FRESH, "fresh"},
    {PEP_MAML_PE_INIT_META, "meta"},
    {PEP_MAML_PE_INIT_EPISODE, "episode"},
};
const struct pep_names pep_maml_pe_init_names = {"inner-loop start", pe_inits, COUNT(pe_inits)};

static const struct pep_name inner_optims[] = {
    {PEP_MAML_INNER_SGD, "sgd"},
    {PEP_MAML_INNER_ADAM, "adam"},
    {PEP_MAML_INNER_FINETUNE, "finetune"},
};
const struct pep_names pep_maml_inner_optim_names = {"inner optimiser", inner_optims, COUNT(inner_optims)};
