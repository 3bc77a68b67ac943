/* SentencePiece files: reading an spm.model into a pep_spm, and writing the untagged
 * training text (tokens joined by single spaces, one sentence per line) from the NER files
 * the stages read (io/conll.c with the data.* settings of a config). None of these functions is collective: call them on one
 * rank (or on every rank independently). */
#ifndef PEP_IO_SPM_FILE_H
#define PEP_IO_SPM_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "tokenizer/spm.h"

/* Reads and parses a SentencePiece model file. PEP_ERR_IO if it cannot be opened or read,
 * PEP_ERR_FORMAT if it is not a (unigram) SentencePiece model. Not collective. */
int pep_spm_read_file(const char *path, struct pep_spm **out);
/* The number of pieces in a SentencePiece model file (pep_spm_piece_count), without loading
 * it: what `import-hf` checks against the embedding rows. Not collective. */
int pep_spm_count_pieces(const char *path, int *pieces);

/* Writes the sentences of each language's split (pep_conll_read_lang with cfg's data.root,
 * data.path, data.separator, data.scheme, data.unknown_types and data.tags; all sentences,
 * whatever data.max_sentences says) to `out` as text, one sentence per line, tokens joined by
 * one space. per_lang > 0 keeps a deterministic
 * sample of that many sentences (seeded by (seed, language index)), in file order;
 * per_lang <= 0 keeps all. *n_lines (may be NULL) gets the number written. Not collective. */
int pep_spm_write_text(const struct pep_config *cfg, const char *const *langs, int n_langs, const char *split,
                       long per_lang, uint64_t seed, FILE *out, long *n_lines);

#endif
