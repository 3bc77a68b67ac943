/* Tokenizer training: what `peprime pretrain` calls when it finds no tokenizer, and what
 * `peprime tokenizer train` runs. The training text of the chosen languages is read as the
 * stages read it (io/conll.c with the config's data.* keys, or the generated corpus), one
 * sentence a line, and spm_train (the sentencepiece tool) trains a unigram model on it. Not
 * collective: call on one rank. */
#ifndef PEP_TOKENIZER_TRAIN_H
#define PEP_TOKENIZER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define PEP_TOKENIZER_MAX_LANGS 256
#define PEP_TOKENIZER_COVERAGE 0.9995 /* spm_train --character_coverage unless told */

struct pep_tokenizer_train_params {
    const struct pep_config *cfg; /* data.* keys: which files are read and how */
    const char *data;             /* the data root (as data.root), or "generated" */
    const char *languages;        /* "en,de,..." or "all" (every folder of <data>/ner/wikiann) */
    const char *out;              /* PREFIX.model (spm_train also writes PREFIX.vocab) */
    long vocab;                   /* pieces asked for; a small corpus may give fewer */
    long per_lang;                /* sentences sampled per language; <= 0: all */
    uint64_t seed;
    double coverage;              /* spm_train --character_coverage */
};

/* Trains the model p->out as `p` says. */
int pep_tokenizer_train_run(const struct pep_tokenizer_train_params *p);
/* Trains a unigram model on the training text of `languages` (comma list), read with cfg's
 * data.* keys (data.corpus = generated: the generated corpus) -> `out`. */
int pep_tokenizer_train(const struct pep_config *cfg, const char *languages, long vocab, const char *out,
                        long per_lang, uint64_t seed);
/* Splits "en,de" (or "all": every folder of <root>/ner/wikiann, sorted) into langs[] (room
 * for PEP_TOKENIZER_MAX_LANGS); `store` owns the strings. */
int pep_tokenizer_languages(const char *root, const char *spec, char *store, size_t store_len, char **langs, int *n);

#endif
