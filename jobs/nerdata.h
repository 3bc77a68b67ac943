/* The NER data as the stages use it: one language's split read (io/conll), encoded with the
 * SentencePiece model (src/data/ner_align.h) into fixed-stride id and label rows, with the word ->
 * first-piece map that evaluation needs, and batches cut from it. */
#ifndef PEP_NERDATA_H
#define PEP_NERDATA_H

#include <mpi.h>

#include "metrics/conlleval.h"
#include "model/model.h"
#include "run.h"
#include "tokenizer/spm.h"

struct pep_nerset {
    char lang[PEP_LANG_MAX];
    char split[16];
    int n;            /* sentences */
    int T;            /* row stride: model.max_seq_len */
    int *ids;         /* (n, T) fairseq ids, PEP_PAD_ID after the sentence */
    int *labels;      /* (n, T) tag at each word's first piece, PEP_IGNORE_INDEX elsewhere */
    int *len;         /* (n) ids in use */
    int *word_off;    /* (n + 1) offsets into gold / first */
    int *gold;        /* gold tag of every word */
    int *first;       /* index of every word's first piece in its row, -1 if truncated away */
    long tokens;      /* ids in use over all sentences */
    struct pep_corpus *corpus; /* the sentences as read: words and gold tags (prediction files) */
    int *pred;        /* NULL, or (words) where pep_nerset_score puts each word's predicted tag */
    int truncated_sentences, truncated_words;
};

/* Path of <root>/ner/wikiann/<lang>/<split>.txt (or the generated corpus when
 * data.corpus = generated), read and encoded. Reports truncation through pep_info. */
int pep_nerset_load(const struct pep_run *run, const struct pep_spm *spm, const char *lang, const char *split,
                    struct pep_nerset *out);
void pep_nerset_free(struct pep_nerset *s);
/* Fills b (pep_batch_alloc'd for B sequences, B * s->T tokens) with the sentences idx[0..B),
 * real tokens only. */
int pep_nerset_batch(const struct pep_nerset *s, const int *idx, int B, struct pep_batch *b);
/* Tags every word of the set with the model (argmax at its first piece; words cut by
 * truncation count as "O") and adds gold / predicted tags to `ev`. Sentences are sharded
 * over the ranks of comm and the counts this call adds are summed, so every rank ends with
 * the same `ev` (which may already hold the counts of other sets: they are not summed
 * again). A failure on one rank is agreed on before the reduction. If
 * s->pred is set, the predicted tags of the sentences this rank scored are written there
 * (pep_nerset_gather_pred collects the rest). Collective. */
int pep_nerset_score(struct pep_model *m, const struct pep_nerset *s, struct pep_conlleval *ev, MPI_Comm comm,
                     int rank, int size);
/* Allocates s->pred for pep_nerset_score, one -1 per word. Not collective. */
int pep_nerset_alloc_pred(struct pep_nerset *s);
/* After pep_nerset_score: rank 0's s->pred gets every word's prediction, whichever rank scored
 * it (the other ranks' s->pred is undefined afterwards). s->pred must have been filled with -1
 * on every rank before scoring (pep_nerset_alloc_pred). Collective. */
int pep_nerset_gather_pred(const struct pep_nerset *s, MPI_Comm comm, int rank, int size);
#endif
