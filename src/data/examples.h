/* From a tagged corpus to model inputs: each sentence becomes one example
 * [<s>] + subword pieces of each word + [</s>] with the word's tag id on its first piece and
 * PEP_IGNORE_INDEX elsewhere (Hugging Face's label_all_tokens = False convention); examples are
 * cut at T = model.max_seq_len; batches are padded to the longest example (rounded up to a
 * multiple of 8, at most max_T); deterministic shuffling from (seed, epoch). Pure C. */
#ifndef PEP_DATA_EXAMPLES_H
#define PEP_DATA_EXAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "data/corpus.h"
#include "model/model.h"

/* Word encoder (the SentencePiece one lives with the tokenizer). Writes the word's piece ids to
 * ids[0 .. *n) with *n <= cap and returns PEP_OK (or an error status with a message). cap is at
 * least max_T, so a word with more pieces may write only the first cap: the sentence is
 * truncated there anyway. A word with no pieces is given one <unk> so that it keeps its label. */
typedef int (*pep_encode_word_fn)(void *ud, const char *word, size_t len, int *ids, int cap, int *n);

struct pep_examples {
    int count;        /* examples = corpus sentences, same order */
    int max_T;
    size_t *start;    /* (count + 1) offset of example i in ids / labels */
    int *ids;         /* all examples back to back */
    int *labels;      /* same layout */
    int *word_pos;    /* (corpus nwords) position of the word's first piece in its example; -1 if cut off */
    int truncated;    /* sentences that did not fit in max_T (the caller reports this) */
    long words_cut;   /* words whose first piece fell beyond max_T (they lose their label) */
    int longest;      /* longest example after truncation */
};

static inline int pep_examples_len(const struct pep_examples *ex, int i)
{
    return (int)(ex->start[i + 1] - ex->start[i]);
}

/* Builds one example per sentence of `c`. max_T >= 3. */
int pep_examples_build(const struct pep_corpus *c, pep_encode_word_fn encode, void *ud, int max_T,
                       struct pep_examples **out);
void pep_examples_destroy(struct pep_examples **ex);

/* Per-word tags of sentence s from per-position tags of its example (pos_tags[t] = predicted tag
 * at position t of example s, e.g. the argmax of one batch row): the tag at the word's first piece,
 * `fallback` (normally the id of "O") for words that were cut off. */
void pep_examples_word_tags(const struct pep_examples *ex, const struct pep_corpus *c, int s, const int *pos_tags,
                            int fallback, int *word_tags);

/* Allocates input_ids and labels for up to max_B x max_T (pep_batch_fill's requirement). */
int pep_batch_alloc(struct pep_batch *b, int max_B, int max_T);
void pep_batch_free(struct pep_batch *b);
/* Batch of the examples idx[0 .. B): T = longest of them rounded up to a multiple of 8, at most
 * ex->max_T; input_ids padded with PEP_PAD_ID and labels with PEP_IGNORE_INDEX. b's buffers must
 * hold B * ex->max_T ints (pep_batch_alloc). */
int pep_batch_fill(const struct pep_examples *ex, const int *idx, int B, struct pep_batch *b);

/* idx = a permutation of 0 .. n-1, the same for the same (seed, epoch) (Fisher-Yates with a
 * pep_rng stream seeded from (seed, epoch, stream)). */
void pep_permutation(int *idx, int n, uint64_t seed, uint64_t epoch, uint64_t stream);

#endif
