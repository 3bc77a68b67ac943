/* Corpus -> examples -> padded batches, and seeded permutations (see examples.h). */
#include "data/examples.h"

#include <string.h>

#include "core/error.h"
#include "core/rng.h"

int pep_examples_build(const struct pep_corpus *c, pep_encode_word_fn encode, void *ud, int max_T,
                       struct pep_examples **out)
{
    *out = NULL;
    PEP_CHECK(max_T >= 3, PEP_ERR_USAGE, "model.max_seq_len = %d leaves no room for a word between <s> and </s>",
              max_T);
    int rc = PEP_OK;
    struct pep_examples *ex = NULL;
    int *pieces = NULL;
    PEP_ALLOC(ex, 1);
    ex->count = c->nsent;
    ex->max_T = max_T;
    /* Two passes: the first sizes the buffers, the second fills them. Encoding twice is cheaper
     * than growing buffers for the sizes here and keeps the callback stateless. */
    size_t total = 0;
    int cap = max_T > 256 ? max_T : 256;
    PEP_ALLOC_GOTO(rc, pieces, cap);
    PEP_ALLOC_GOTO(rc, ex->start, (size_t)c->nsent + 1);
    PEP_ALLOC_GOTO(rc, ex->word_pos, c->nwords ? c->nwords : 1);
    for (int pass = 0; pass < 2; pass++) {
        total = 0;
        for (int s = 0; s < c->nsent; s++) {
            ex->start[s] = total;
            int nw = pep_corpus_sentence_len(c, s);
            const int *tags = pep_corpus_sentence_tags(c, s);
            size_t w0 = c->sent_start[s];
            int t = 0;
            if (pass) ex->ids[total] = PEP_BOS_ID, ex->labels[total] = PEP_IGNORE_INDEX;
            t = 1;
            int cut = 0;
            for (int j = 0; j < nw; j++) {
                int n = 0;
                if (!cut) {
                    PEP_CALL_GOTO(rc, encode(ud, c->text + c->word_off[w0 + j], (size_t)c->word_len[w0 + j], pieces,
                                             cap, &n));
                    PEP_CHECK_GOTO(rc, n >= 0 && n <= cap, PEP_ERR_INTERNAL,
                                   "word encoder returned %d pieces for a buffer of %d", n, cap);
                    if (n == 0) pieces[0] = PEP_UNK_ID, n = 1;
                }
                if (cut || t >= max_T - 1) {
                    cut = 1;
                    if (pass) ex->word_pos[w0 + j] = -1, ex->words_cut++;
                    continue;
                }
                int fit = n < max_T - 1 - t ? n : max_T - 1 - t;
                if (fit < n) cut = 1;
                if (pass) {
                    ex->word_pos[w0 + j] = t;
                    for (int k = 0; k < fit; k++) {
                        ex->ids[total + (size_t)t + (size_t)k] = pieces[k];
                        ex->labels[total + (size_t)t + (size_t)k] = k == 0 ? tags[j] : PEP_IGNORE_INDEX;
                    }
                }
                t += fit;
            }
            if (pass) {
                ex->ids[total + (size_t)t] = PEP_EOS_ID;
                ex->labels[total + (size_t)t] = PEP_IGNORE_INDEX;
                ex->truncated += cut;
                if (t + 1 > ex->longest) ex->longest = t + 1;
            }
            total += (size_t)t + 1;
        }
        ex->start[c->nsent] = total;
        if (!pass) {
            PEP_ALLOC_GOTO(rc, ex->ids, total ? total : 1);
            PEP_ALLOC_GOTO(rc, ex->labels, total ? total : 1);
        }
    }
    pep_free(pieces);
    *out = ex;
    return PEP_OK;
cleanup:
    pep_free(pieces);
    pep_examples_destroy(&ex);
    return rc;
}

void pep_examples_destroy(struct pep_examples **ex)
{
    if (!ex || !*ex) return;
    pep_free((*ex)->start);
    pep_free((*ex)->ids);
    pep_free((*ex)->labels);
    pep_free((*ex)->word_pos);
    pep_free(*ex);
    *ex = NULL;
}

void pep_examples_word_tags(const struct pep_examples *ex, const struct pep_corpus *c, int s, const int *pos_tags,
                            int fallback, int *word_tags)
{
    int nw = pep_corpus_sentence_len(c, s);
    const int *wp = ex->word_pos + c->sent_start[s];
    for (int j = 0; j < nw; j++) word_tags[j] = wp[j] >= 0 ? pos_tags[wp[j]] : fallback;
}

int pep_batch_alloc(struct pep_batch *b, int max_B, int max_T)
{
    memset(b, 0, sizeof *b);
    PEP_CHECK(max_B > 0 && max_T > 0, PEP_ERR_USAGE, "batch of %d x %d", max_B, max_T);
    PEP_ALLOC(b->input_ids, (size_t)max_B * (size_t)max_T);
    b->labels = pep_alloc_((size_t)max_B * (size_t)max_T * sizeof(int), "labels", __FILE__, __LINE__, __func__);
    if (!b->labels) {
        pep_batch_free(b);
        return PEP_ERR_NOMEM;
    }
    return PEP_OK;
}

void pep_batch_free(struct pep_batch *b)
{
    if (!b) return;
    pep_free(b->input_ids);
    pep_free(b->labels);
    memset(b, 0, sizeof *b);
}

int pep_batch_fill(const struct pep_examples *ex, const int *idx, int B, struct pep_batch *b)
{
    PEP_CHECK(B > 0, PEP_ERR_USAGE, "empty batch");
    int longest = 0;
    for (int i = 0; i < B; i++) {
        PEP_CHECK(idx[i] >= 0 && idx[i] < ex->count, PEP_ERR_USAGE, "example %d outside [0, %d)", idx[i], ex->count);
        int l = pep_examples_len(ex, idx[i]);
        if (l > longest) longest = l;
    }
    int T = (longest + 7) / 8 * 8;
    if (T > ex->max_T) T = ex->max_T;
    b->B = B;
    b->T = T;
    for (int i = 0; i < B; i++) {
        int l = pep_examples_len(ex, idx[i]);
        int *row = b->input_ids + (size_t)i * (size_t)T, *lab = b->labels + (size_t)i * (size_t)T;
        memcpy(row, ex->ids + ex->start[idx[i]], (size_t)l * sizeof(int));
        memcpy(lab, ex->labels + ex->start[idx[i]], (size_t)l * sizeof(int));
        for (int t = l; t < T; t++) row[t] = PEP_PAD_ID, lab[t] = PEP_IGNORE_INDEX;
    }
    return PEP_OK;
}

void pep_permutation(int *idx, int n, uint64_t seed, uint64_t epoch, uint64_t stream)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, epoch, stream);
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)pep_rng_below(&r, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
