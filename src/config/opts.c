/* [optim] and [maml] as the options src/optim and src/maml take (config.h): those folders read
 * no config. */
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "maml/maml.h"
#include "optim/optim.h"

int pep_optim_from_config(const struct pep_config *cfg, struct pep_optim *o)
{
    memset(o, 0, sizeof *o);
    if (pep_optim_kind_parse(cfg->optim.name, &o->kind) != 0) {
        char valid[64];
        pep_names_list(&pep_optim_kind_names, ", ", " or ", valid, sizeof valid);
        PEP_FAIL(PEP_ERR_USAGE, "optim.name must be %s, got '%s'", valid, cfg->optim.name);
    }
    o->lr = cfg->optim.lr;
    o->beta1 = cfg->optim.beta1;
    o->beta2 = cfg->optim.beta2;
    o->eps = cfg->optim.eps;
    o->weight_decay = cfg->optim.weight_decay;
    o->clip = cfg->optim.clip;
    o->warmup = cfg->optim.warmup;
    o->total_steps = cfg->optim.steps;
    if (pep_optim_schedule_parse(cfg->optim.schedule, &o->schedule) != 0) {
        char valid[64];
        pep_names_list(&pep_optim_schedule_names, ", ", " or ", valid, sizeof valid);
        PEP_FAIL(PEP_ERR_USAGE, "optim.schedule must be %s, got '%s'", valid, cfg->optim.schedule);
    }
    o->min_lr_ratio = cfg->optim.min_lr_ratio;
    return PEP_OK;
}

int pep_maml_opts_from_config(const struct pep_config *cfg, const struct pep_model *m, struct pep_maml_opts *o)
{
    memset(o, 0, sizeof *o);
    /* pep_config_validate checked the names */
    PEP_CHECK(pep_maml_method_parse(cfg->maml.method, &o->method) == 0 &&
                  pep_maml_pe_init_parse(cfg->maml.pe_init, &o->pe_init) == 0 &&
                  pep_maml_inner_optim_parse(cfg->maml.inner_optim, &o->inner_optim) == 0,
              PEP_ERR_USAGE, "unknown maml.method '%s', maml.pe_init '%s' or maml.inner_optim '%s' (pep_config_validate "
              "lists the choices)", cfg->maml.method, cfg->maml.pe_init, cfg->maml.inner_optim);
    o->order = cfg->maml.order;
    o->inner_steps = cfg->maml.inner_steps;
    o->inner_lr = cfg->maml.inner_lr;
    const char *gopt[PEP_GROUP_COUNT] = {NULL, cfg->maml.inner_pe_optim, cfg->maml.inner_head_optim};
    const float glr[PEP_GROUP_COUNT] = {-1.0f, cfg->maml.inner_pe_lr, cfg->maml.inner_head_lr};
    for (int g = PEP_GROUP_PE; g < PEP_GROUP_COUNT; g++) {
        struct pep_maml_rule *r = &o->rule[g];
        r->set = strcmp(gopt[g], "same") != 0 || glr[g] >= 0.0f;
        r->optim = o->inner_optim;
        r->lr = glr[g] >= 0.0f ? glr[g] : o->inner_lr;
        PEP_CHECK(!strcmp(gopt[g], "same") || pep_maml_inner_optim_parse(gopt[g], &r->optim) == 0, PEP_ERR_USAGE,
                  "unknown inner rule '%s' for the %s group (pep_config_validate lists the choices)", gopt[g],
                  pep_group_name((enum pep_group)g));
    }
    o->fd_eps = cfg->maml.fd_eps;
    o->beta1 = cfg->optim.beta1, o->beta2 = cfg->optim.beta2, o->adam_eps = cfg->optim.eps;
    o->fresh_seed = (uint64_t)cfg->run.seed * 1000003u + 17u;
    o->meta_batch = cfg->maml.meta_batch;
    PEP_CALL(pep_groups_parse(cfg->maml.inner_set, &o->inner));
    PEP_CALL(pep_groups_parse(cfg->maml.outer_set, &o->outer));
    const struct pep_param_table *t = &m->table;
    PEP_CHECK(pep_param_table_group_numel(t, o->inner) > 0, PEP_ERR_USAGE,
              "maml.inner_set = %s is empty for pe.method = %s", cfg->maml.inner_set, cfg->pe.method);
    for (int g = 0; g < PEP_GROUP_COUNT; g++)
        if (o->outer & PEP_GROUP_BIT(g))
            PEP_CHECK(pep_param_table_group_numel(t, PEP_GROUP_BIT(g)) > 0, PEP_ERR_USAGE,
                      "maml.outer_set = %s includes the '%s' group, which is empty for pe.method = %s",
                      cfg->maml.outer_set, pep_group_name((enum pep_group)g), cfg->pe.method);
    unsigned both = o->inner & o->outer & ~PEP_GROUP_BIT(PEP_GROUP_PLM);
    PEP_CHECK(o->method == PEP_MAML_METHOD_MULTITASK || !both || o->pe_init == PEP_MAML_PE_INIT_META, PEP_ERR_USAGE,
              "maml.outer_set = %s updates parameters that maml.inner_set = %s restarts fresh every episode; set "
              "maml.pe_init = meta to meta-learn their initialisation, or use maml.outer_set = plm",
              cfg->maml.outer_set, cfg->maml.inner_set);
    return PEP_OK;
}
