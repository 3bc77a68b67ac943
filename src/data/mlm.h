/* Masked-LM masking of a batch (BERT / RoBERTa recipe, as in Hugging Face's
 * DataCollatorForLanguageModeling): each non-special position is chosen with probability
 * mask_prob; a chosen one becomes <mask> (80%), a random id of the normal vocabulary 4 .. V-2
 * (10%) or stays (10%); labels = the original id at chosen positions, PEP_IGNORE_INDEX elsewhere.
 * Special ids, never chosen: <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> V-1. Pure C. */
#ifndef PEP_DATA_MLM_H
#define PEP_DATA_MLM_H

#include <stdint.h>

#include "model/model.h"

/* In place on b->input_ids (its pep_batch_tokens(b) real tokens); overwrites b->labels. The draws come from a pep_rng stream seeded
 * with (seed, step), so the same (seed, step) gives the same mask. *nchosen (may be NULL) gets
 * the number of chosen positions. V >= 6. */
int pep_mlm_mask(struct pep_batch *b, int V, float mask_prob, uint64_t seed, uint64_t step, long *nchosen);

#endif
