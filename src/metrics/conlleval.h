/* Entity-level precision / recall / F1 over IOB2 tag sequences, with conlleval.pl's chunking
 * (default) or seqeval's strict IOB2 chunking, per-type and micro-averaged counts, and a
 * printable table of per-language results with their micro and macro averages.
 *
 * Chunking. Tags are "O", "B-<type>" and "I-<type>". In both modes a chunk is a start token
 * followed by the longest run of I-<same type> tokens; sentence boundaries end every chunk.
 *  - conlleval (strict = 0), conlleval.pl's startOfChunk/endOfChunk for IOB: a chunk starts at
 *    every B-X, and at an I-X whose previous token is O, of another type, or that opens the
 *    sentence. So "O I-PER I-PER" holds one PER chunk and "B-LOC I-PER" two chunks.
 *  - strict IOB2 (strict = 1), seqeval's mode="strict", scheme=IOB2 (seqeval.scheme.Tokens):
 *    a chunk starts only at B-X. An I-X that does not continue a B-X/I-X run of type X is
 *    ill-formed: it belongs to no chunk (so it can neither be nor match an entity) and is
 *    counted in ill_formed_gold / ill_formed_pred. "O I-PER I-PER" holds no chunk;
 *    "B-LOC I-PER" holds the LOC chunk only.
 * A predicted chunk is correct when a gold chunk has the same start, end and type.
 * precision = correct / pred, recall = correct / gold, F1 = 2PR / (P + R), each 0 when its
 * denominator is 0 (conlleval's convention), reported as fractions in [0, 1]. */
#ifndef PEP_METRICS_CONLLEVAL_H
#define PEP_METRICS_CONLLEVAL_H

#include <stddef.h>

#include "data/corpus.h"

#define PEP_EVAL_MAX_TYPES 32

enum pep_iob { PEP_IOB_O = 0, PEP_IOB_B = 1, PEP_IOB_I = 2 };

struct pep_eval_counts {
    long gold, pred, correct; /* chunks */
};

struct pep_chunk {
    int start, end; /* tokens [start, end) */
    int type;
};

struct pep_conlleval {
    int ntags, ntypes, strict;
    int *prefix; /* (ntags) enum pep_iob */
    int *type;   /* (ntags) type id, -1 for O */
    char type_names[PEP_EVAL_MAX_TYPES][PEP_TAG_NAME_MAX];
    struct pep_eval_counts all;
    struct pep_eval_counts per_type[PEP_EVAL_MAX_TYPES];
    long sentences, tokens, tokens_correct;
    long ill_formed_gold, ill_formed_pred; /* I- tags that continue no chunk */
    struct pep_chunk *scratch;             /* chunk lists of the sentence being added */
    int scratch_cap;
};

/* One language's (or one run's) result, a plain value for io/results.c and the table. */
struct pep_eval_summary {
    char name[64];
    int strict;
    long sentences, tokens, tokens_correct;
    long ill_formed_gold, ill_formed_pred;
    struct pep_eval_counts all;
    int ntypes;
    char type_names[PEP_EVAL_MAX_TYPES][PEP_TAG_NAME_MAX];
    struct pep_eval_counts per_type[PEP_EVAL_MAX_TYPES];
};

/* Tag set -> evaluator. Every tag must be "O", "B-<type>" or "I-<type>" (PEP_ERR_USAGE naming
 * the tag otherwise); types are numbered in order of first appearance. */
int pep_conlleval_create(const char *const *tags, int ntags, int strict, struct pep_conlleval **out);
void pep_conlleval_destroy(struct pep_conlleval **ev);
/* Clears the counts. */
void pep_conlleval_reset(struct pep_conlleval *ev);
/* Chunks of one sentence of n tag ids (out needs room for n chunks); *ill_formed (may be NULL)
 * gets the number of I- tags that continue no chunk. */
int pep_conlleval_chunks(const struct pep_conlleval *ev, const int *tags, int n, struct pep_chunk *out, int *nchunks,
                         int *ill_formed);
/* Adds one sentence: gold and predicted tag ids, n each. */
int pep_conlleval_add(struct pep_conlleval *ev, const int *gold, const int *pred, int n);
void pep_conlleval_summary(const struct pep_conlleval *ev, const char *name, struct pep_eval_summary *out);

void pep_eval_prf(const struct pep_eval_counts *c, double *precision, double *recall, double *f1);
/* Sum of the counts of n summaries (per type matched by name), named "micro". */
int pep_eval_micro(const struct pep_eval_summary *s, int n, struct pep_eval_summary *out);
/* Unweighted mean over the n summaries of their precision, recall and F1 (0 if n = 0). */
void pep_eval_macro(const struct pep_eval_summary *s, int n, double *precision, double *recall, double *f1);
/* A fixed-width text table: one row per summary (P, R, F1 in percent, gold/pred/correct chunks,
 * sentences), then the micro and macro rows. PEP_ERR_USAGE if buf is too small. */
int pep_eval_format_table(const struct pep_eval_summary *s, int n, char *buf, size_t len);

#endif
