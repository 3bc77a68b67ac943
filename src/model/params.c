/* Parameter table (params.h). */
#include "model/params.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void pep_param_table_init(struct pep_param_table *t) { memset(t, 0, sizeof *t); }

void pep_param_table_fini(struct pep_param_table *t)
{
    free(t->rows);
    memset(t, 0, sizeof *t);
}

int pep_param_table_add(struct pep_param_table *t, const char *name, enum pep_group group, int ndim,
                        size_t d0, size_t d1, int *index)
{
    PEP_CHECK(ndim >= 1 && ndim <= PEP_PARAM_MAX_DIMS, PEP_ERR_INTERNAL, "parameter %s: bad ndim %d", name, ndim);
    PEP_CHECK(strlen(name) < PEP_PARAM_NAME_MAX, PEP_ERR_INTERNAL, "parameter name too long: %s", name);
    PEP_CHECK(t->count == 0 || t->rows[t->count - 1].group <= group, PEP_ERR_INTERNAL,
              "parameter %s added out of group order", name);
    PEP_CHECK(pep_param_table_find(t, name) < 0, PEP_ERR_INTERNAL, "parameter %s added twice", name);
    if (t->count == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        struct pep_param *rows = realloc(t->rows, (size_t)cap * sizeof *rows);
        PEP_CHECK(rows, PEP_ERR_NOMEM, "out of memory growing the parameter table");
        t->rows = rows;
        t->cap = cap;
    }
    struct pep_param *p = &t->rows[t->count];
    memset(p, 0, sizeof *p);
    strcpy(p->name, name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->group = group;
    p->numel = d0 * (ndim > 1 ? d1 : 1);
    /* start each group on a 64-byte boundary so group ranges are aligned */
    if (t->count > 0 && t->rows[t->count - 1].group != group) t->numel = (t->numel + 15) & ~(size_t)15;
    if (t->count == 0 || t->rows[t->count - 1].group != group) {
        for (int g = (t->count ? (int)t->rows[t->count - 1].group + 1 : 0); g <= (int)group; g++)
            t->group_begin[g] = t->group_end[g] = t->numel;
    }
    p->offset = t->numel;
    t->numel += p->numel;
    t->group_end[group] = t->numel;
    for (int g = (int)group + 1; g < PEP_GROUP_COUNT; g++) t->group_begin[g] = t->group_end[g] = t->numel;
    if (index) *index = t->count;
    t->count++;
    return PEP_OK;
}

int pep_param_table_find(const struct pep_param_table *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->rows[i].name, name) == 0) return i;
    return -1;
}

int pep_param_table_range(const struct pep_param_table *t, unsigned groups, size_t *begin, size_t *end)
{
    int lo = -1, hi = -1;
    for (int g = 0; g < PEP_GROUP_COUNT; g++)
        if (groups & PEP_GROUP_BIT(g)) {
            if (lo < 0) lo = g;
            PEP_CHECK(hi < 0 || hi == g - 1, PEP_ERR_USAGE, "group set %#x is not contiguous", groups);
            hi = g;
        }
    PEP_CHECK(lo >= 0, PEP_ERR_USAGE, "empty group set");
    *begin = t->group_begin[lo];
    *end = t->group_end[hi];
    return PEP_OK;
}

size_t pep_param_table_group_numel(const struct pep_param_table *t, unsigned groups)
{
    size_t n = 0;
    for (int i = 0; i < t->count; i++)
        if (groups & PEP_GROUP_BIT(t->rows[i].group)) n += t->rows[i].numel;
    return n;
}

const char *pep_group_name(enum pep_group g)
{
    switch (g) {
    case PEP_GROUP_PLM: return "plm";
    case PEP_GROUP_PE: return "pe";
    case PEP_GROUP_HEAD: return "head";
    default: return "?";
    }
}

int pep_groups_parse(const char *s, unsigned *groups)
{
    static const struct { const char *name; unsigned mask; } names[] = {
        {"plm", PEP_GROUP_BIT(PEP_GROUP_PLM)},
        {"pe", PEP_GROUP_BIT(PEP_GROUP_PE)},
        {"head", PEP_GROUP_BIT(PEP_GROUP_HEAD)},
        {"pe+head", PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD)},
        {"plm+pe", PEP_GROUP_BIT(PEP_GROUP_PLM) | PEP_GROUP_BIT(PEP_GROUP_PE)},
        {"all", PEP_GROUPS_ALL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *groups = names[i].mask;
            return PEP_OK;
        }
    PEP_FAIL(PEP_ERR_USAGE, "unknown parameter group set '%s' (valid: plm, pe, head, pe+head, plm+pe, all)", s);
}
