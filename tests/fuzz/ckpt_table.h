/* The tiny parameter table of the checkpoint seed (one row per group) shared by the seed
 * writer (make_ckpt_seed.c) and the checkpoint harness (fuzz_checkpoint.c), which reads the
 * rows back as `peprime` stages do. */
#ifndef PEP_FUZZ_CKPT_TABLE_H
#define PEP_FUZZ_CKPT_TABLE_H

#include "model/model.h"
#include "model/params.h"

/* plm: embeddings.word_embeddings.weight (3, 2); pe: adapter_up.bias (2); head: classifier.bias (2). */
int fuzz_ckpt_table(struct pep_param_table *t);
/* A model spec whose shape attributes the seed stores (not the table's shape: only read back). */
void fuzz_ckpt_spec(struct pep_model_spec *s);

#endif
