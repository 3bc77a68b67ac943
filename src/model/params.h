/* The parameter table: one row {name, shape, group, offset} per tensor, driving one flat
 * parameter block and one flat gradient block (llm.c's fill_in_parameter_sizes). The same
 * table drives the optimizer masks, the MAML fast weights, the single gradient allreduce,
 * the HDF5 dataset names (Hugging Face XLM-R names) and one gradient test per row.
 *
 * Rows are added in group order — every `plm` row, then every `pe` row, then every `head`
 * row — so each group, and each union of neighbouring groups (pe+head, plm+pe, all), is one
 * contiguous range of the flat blocks. */
#ifndef PEP_PARAMS_H
#define PEP_PARAMS_H

#include <stddef.h>

enum pep_group {
    PEP_GROUP_PLM = 0,  /* embeddings + encoder (the pretrained model) */
    PEP_GROUP_PE = 1,   /* adapters, prefixes, LoRA */
    PEP_GROUP_HEAD = 2, /* tagging head (or the MLM head when pretraining) */
    PEP_GROUP_COUNT = 3
};

#define PEP_GROUP_BIT(g) (1u << (g))
#define PEP_GROUPS_ALL (PEP_GROUP_BIT(PEP_GROUP_PLM) | PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD))

#define PEP_PARAM_NAME_MAX 96
#define PEP_PARAM_MAX_DIMS 2

struct pep_param {
    char name[PEP_PARAM_NAME_MAX];  /* e.g. "encoder.layer.0.attention.self.query.weight" */
    int ndim;
    size_t shape[PEP_PARAM_MAX_DIMS]; /* row-major, Hugging Face layout (out, in) for Linear */
    enum pep_group group;
    size_t offset;                  /* in floats, into the flat blocks */
    size_t numel;
};

struct pep_param_table {
    struct pep_param *rows;
    int count, cap;
    size_t numel;                           /* total floats */
    size_t group_begin[PEP_GROUP_COUNT];    /* [begin, end) float range of each group */
    size_t group_end[PEP_GROUP_COUNT];
};

void pep_param_table_init(struct pep_param_table *t);
void pep_param_table_fini(struct pep_param_table *t);
/* Appends a row; groups must come in order. Returns the row index in *index. */
int pep_param_table_add(struct pep_param_table *t, const char *name, enum pep_group group, int ndim,
                        size_t d0, size_t d1, int *index);
/* Row index by name, or -1. */
int pep_param_table_find(const struct pep_param_table *t, const char *name);
/* Float range [begin, end) covered by a group mask; the mask must be a contiguous union of
 * groups (plm, pe, head, pe+head, plm+pe, all). Returns PEP_ERR_USAGE otherwise. */
int pep_param_table_range(const struct pep_param_table *t, unsigned groups, size_t *begin, size_t *end);
/* Floats in the groups of the mask. */
size_t pep_param_table_group_numel(const struct pep_param_table *t, unsigned groups);
const char *pep_group_name(enum pep_group g);
/* Parses "plm", "pe", "head", "pe+head", "plm+pe", "all" into a group mask. */
int pep_groups_parse(const char *s, unsigned *groups);

#endif
