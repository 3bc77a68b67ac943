/* SentencePiece encoding (spm.h; sentencepiece_processor.cc): normalise, segment with the
 * unigram or BPE model, merge consecutive unknowns, expand unknowns to byte pieces under byte
 * fallback; and one word on its own into fairseq ids. */
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/spm_private.h"

int pep_spm_encode(const struct pep_spm *m, const char *text, size_t len, int *ids, int cap,
                   int *n)
{
    int rc = PEP_OK;
    struct spm_buf nb = {0};
    struct spm_node *best = NULL, best_local[257];
    int *rev = NULL, rev_local[256];
    PEP_CHECK(m && n && (text || len == 0) && (ids || cap == 0), PEP_ERR_USAGE,
              "pep_spm_encode: NULL argument");
    *n = 0;
    nb.p = nb.local;
    nb.cap = sizeof(nb.local);
    PEP_CALL_GOTO(rc, spm_normalize(m, text, len, &nb));
    if (nb.n == 0) goto cleanup;
    PEP_CHECK_GOTO(rc, nb.n < (size_t)INT32_MAX / 2, PEP_ERR_USAGE,
                   "pep_spm_encode: text of %zu bytes is too long", len);
    int size = (int)nb.n;
    if (size < 256) {
        best = best_local;
        rev = rev_local;
    } else {
        PEP_ALLOC_GOTO(rc, best, (size_t)size + 1);
        PEP_ALLOC_GOTO(rc, rev, (size_t)size);
    }
    int n_rev = 0;
    if (m->model_type == 2) {
        if (rev != rev_local) pep_free(rev);
        PEP_ALLOC_GOTO(rc, rev, 3 * (size_t)size + 3);
        PEP_CALL_GOTO(rc, spm_bpe_encode(m, nb.p, size, rev, &n_rev));
        n_rev /= 3;
    } else {
        PEP_CALL_GOTO(rc, spm_viterbi(m, nb.p, size, best, rev, &n_rev));
    }
    int count = 0, prev_unk = 0;
    for (int k = m->model_type == 2 ? 0 : n_rev - 1; m->model_type == 2 ? k < n_rev : k >= 0;
         k += m->model_type == 2 ? 1 : -1) {
        int end, start, id;
        if (m->model_type == 2) {
            id = rev[3 * k];
            start = rev[3 * k + 1];
            end = start + rev[3 * k + 2];
        } else {
            end = rev[k];
            start = best[end].start;
            id = best[end].id;
        }
        int is_unk = id == m->unk_id;
        if (is_unk && m->byte_fallback) {
            for (int b = start; b < end; b++) {
                if (count < cap) ids[count] = m->byte_ids[(unsigned char)nb.p[b]];
                count++;
            }
        } else if (!(is_unk && prev_unk)) {
            if (count < cap) ids[count] = id;
            count++;
        }
        prev_unk = is_unk;
    }
    *n = count;
    if (count > cap)
        rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "pep_spm_encode: %d pieces do not fit in %d ids", count, cap);
cleanup:
    if (best != best_local) pep_free(best);
    if (rev != rev_local) pep_free(rev);
    if (nb.p != nb.local) pep_free(nb.p);
    return rc;
}

int pep_spm_encode_word(const struct pep_spm *m, const char *word, size_t len, int *ids, int cap,
                        int *n)
{
    PEP_CALL(pep_spm_encode(m, word, len, ids, cap, n));
    if (*n == 0 && len > 0) {
        *n = 1;
        PEP_CHECK(cap >= 1, PEP_ERR_USAGE, "pep_spm_encode_word: 1 piece does not fit in %d ids", cap);
        ids[0] = m->unk_id;
    }
    for (int k = 0; k < *n; k++) ids[k] = pep_spm_fairseq_id(m, ids[k]);
    return PEP_OK;
}
