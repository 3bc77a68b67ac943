/* A GENERATED (synthetic) NER corpus for when no real data is present: not WikiAnn, not any
 * natural language. Every "language" shares the same sentence templates and entity patterns
 * (IOB2 tags PER / ORG / LOC) but has its own surface vocabulary, spelled from its own syllable
 * inventory; about half of the entity names are shared across languages (as real names often
 * are), and entity words are capitalised. Deterministic from (seed, language, split). Pure C. */
#ifndef PEP_DATA_GENERATED_H
#define PEP_DATA_GENERATED_H

#include <stdint.h>

#include "data/corpus.h"

/* nsent sentences of language `lang` (any code: its vocabulary is derived from the name) and
 * split ("train", "dev", "test": different sentences, same vocabulary). The corpus is named
 * "generated:<lang>" and has generated = 1. `tags` must contain O, B-PER, I-PER, B-ORG, I-ORG,
 * B-LOC, I-LOC (PEP_ERR_USAGE listing what is missing otherwise); tag ids follow `tags`. */
/* Sentences per language and split when the config does not say (data.max_sentences = 0). */
#define PEP_GENERATED_DEFAULT_SENTENCES 3000

int pep_generated_corpus(const char *lang, const char *split, int nsent, uint64_t seed, const char *const *tags,
                         int ntags, struct pep_corpus **out);

#endif
