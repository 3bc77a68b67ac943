/* Evaluation results to files: JSON (per language with per-type counts, micro and macro),
 * CSV (one row per language, then micro and macro) and the per-word prediction file. Both are written to NAME.tmp and renamed.
 * Not collective: call on one rank (rank 0). */
#ifndef PEP_IO_RESULTS_H
#define PEP_IO_RESULTS_H

#include "data/corpus.h"
#include "metrics/conlleval.h"

/* JSON layout (precision/recall/f1 are fractions in [0, 1]):
 * { "format": "peprime-results-1", "chunking": "conlleval" | "strict-iob2", "run": <run_json>,
 *   "languages": { "<lang>": { precision, recall, f1, gold, pred, correct, sentences, tokens,
 *                              token_accuracy, ill_formed_gold, ill_formed_pred,
 *                              "per_type": { "<TYPE>": { precision, recall, f1, gold, pred, correct } } } },
 *   "micro": { same fields as a language, counts summed over languages },
 *   "macro": { precision, recall, f1, "languages": n } }
 * run_json: a JSON object text for "run" (stage, checkpoint, config ...) or NULL for {}. */
int pep_results_write_json(const char *path, const struct pep_eval_summary *s, int n, const char *run_json);
/* CSV header: language,precision,recall,f1,gold,pred,correct,sentences,tokens,token_accuracy;
 * rows "micro" and "macro" (macro has P/R/F1 only) come last. */
int pep_results_write_csv(const char *path, const struct pep_eval_summary *s, int n);

/* The predictions of one language (docs/datasets.md): per word `token<TAB>gold<TAB>predicted`
 * (tag names of c's tag set; gold = c's tags), a blank line after every sentence, in corpus
 * order; what `conlleval.pl -d '\t'` reads. pred holds c->nwords tag ids (PEP_ERR_INTERNAL if
 * one is missing, i.e. outside [0, ntags)). */
int pep_results_write_predictions(const char *path, const struct pep_corpus *c, const int *pred);

#endif
