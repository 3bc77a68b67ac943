/* NER word / subword alignment, the one every caller uses (the stages' data path, `peprime
 * tokenizer align`, the tests): a sentence of words, tagged or not, becomes the encoder's
 * input as XTREME / Hugging Face build it for tagging. Each word is encoded on its own (its
 * own dummy prefix, pep_spm_encode_word), the pieces are framed as [<s>] + pieces + [</s>] in
 * fairseq ids, cut to at most T ids (the word pieces at T - 2), and each word's tag goes on
 * its first piece. Pure C, no I/O. */
#ifndef PEP_DATA_NER_ALIGN_H
#define PEP_DATA_NER_ALIGN_H

#include <stddef.h>

#include "tokenizer/spm.h"

/* words[w] / lens[w] (lens NULL: NUL-terminated words): the n_words words; tags[w] (may be
 * NULL) their tag ids. Outputs: ids[0..*n_ids) (ids has room for T); first_piece[w] = index
 * in ids of word w's first piece, or -1 if the cut dropped it; if labels is not NULL (it
 * needs tags), labels[0..*n_ids) = tags[w] at word w's first piece, PEP_IGNORE_INDEX
 * elsewhere; *n_truncated (may be NULL) = number of words whose first piece was cut. T >= 2. */
int pep_ner_align(const struct pep_spm *spm, const char *const *words, const size_t *lens, const int *tags,
                  int n_words, int T, int *ids, int *labels, int *first_piece, int *n_ids, int *n_truncated);

#endif
