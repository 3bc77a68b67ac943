/* Shared by the checkpoint test programs and the benchmark: an XLM-R-shaped parameter table
 * (Pfeiffer adapters, tagging head) of any size, and deterministic fill values that a Python
 * oracle can recompute in float32. */
#ifndef PEP_CKPT_COMMON_H
#define PEP_CKPT_COMMON_H

#include <stddef.h>

#include "model/model.h"
#include "model/params.h"

/* Rows of embeddings, L encoder layers, one output adapter per layer (width R), K-tag head. */
int ckpt_test_table(struct pep_param_table *t, int L, int C, int FF, int V, int P, int R, int K);
/* The matching shape spec (for the root attributes). */
void ckpt_test_spec(struct pep_model_spec *s, int L, int C, int FF, int V, int P, int R, int K);
/* block[row.offset + i] = (float)(base + row + 1) + (float)i * 0.001f for the rows in `groups`;
 * `origin` is subtracted from the offsets (task states start at their range begin). */
void ckpt_test_fill(const struct pep_param_table *t, float *block, unsigned groups, size_t origin, int base);
/* Number of mismatches against ckpt_test_fill. */
size_t ckpt_test_compare(const struct pep_param_table *t, const float *block, unsigned groups, size_t origin,
                         int base);

#endif
