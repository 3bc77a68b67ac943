/* SentencePiece unigram segmentation (unigram_model.cc EncodeOptimized): Viterbi over the
 * vocabulary trie with sentencepiece's tie-breaking and float/double arithmetic, unknown
 * characters scored min_score - 10. */
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/spm_private.h"

#define SPM_UNK_PENALTY 10.0f    /* kUnkPenalty */

int spm_viterbi(const struct pep_spm *m, const char *norm, int size, struct spm_node *best, int *rev, int *n_rev)
{
    const unsigned char *s = (const unsigned char *)norm;
    const float unk_score = m->min_score - SPM_UNK_PENALTY;
    static const unsigned char one_char_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    for (int k = 0; k <= size; k++) {
        best[k].score = 0.0f;
        best[k].start = -1;
        best[k].id = -1;
    }
    int start = 0;
    while (start < size) {
        const float here = best[start].score;
        int mblen = one_char_len[s[start] >> 4];
        if (mblen > size - start) mblen = size - start;
        int has_single = 0;
        int32_t node = 0;
        for (int pos = start; pos < size;) {
            node = trie_child(&m->vocab, node, s[pos]);
            if (node < 0) break;
            pos++;
            int id = m->vocab.value[node];
            if (id < 0 || m->types[id] == PEP_SPM_PIECE_TYPE_UNUSED) continue;
            int length = pos - start;
            /* The types are sentencepiece's: a user-defined bonus in double, candidate sum
             * in double, compared against and stored as float. */
            double score = m->types[id] == PEP_SPM_PIECE_TYPE_USER_DEFINED
                               ? (double)((float)(size_t)length * m->max_score) - 0.1
                               : (double)m->scores[id];
            double cand = score + (double)here;
            struct spm_node *t = &best[pos];
            if (t->start == -1 || cand > (double)t->score) {
                t->score = (float)cand;
                t->start = start;
                t->id = id;
            }
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            struct spm_node *t = &best[start + mblen];
            double cand = (double)(unk_score + here); /* float + float in sentencepiece */
            if (t->start == -1 || cand > (double)t->score) {
                t->score = (float)cand;
                t->start = start;
                t->id = m->unk_id;
            }
        }
        start += mblen;
    }
    int n = 0;
    for (int end = size; end > 0;) {
        if (best[end].start < 0)
            PEP_FAIL(PEP_ERR_INTERNAL, "spm: no segmentation reaches byte %d of %d", end, size);
        rev[n++] = end; /* remember the end; the piece is (best[end].start, end) */
        end = best[end].start;
    }
    *n_rev = n;
    return PEP_OK;
}
