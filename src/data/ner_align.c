/* NER word / subword alignment (ner_align.h): XTREME's per-word rule, written once. */
#include "data/ner_align.h"

#include <string.h>

#include "core/error.h"
#include "model/model.h"

int pep_ner_align(const struct pep_spm *m, const char *const *words, const size_t *lens, const int *tags,
                  int n_words, int T, int *ids, int *labels, int *first_piece, int *n_ids, int *n_truncated)
{
    int rc = PEP_OK, *tmp = NULL, tmp_cap = 64, dropped = 0;
    PEP_CHECK(m && ids && first_piece && n_ids && (words || n_words == 0) && (tags || !labels) && T >= 2,
              PEP_ERR_USAGE, "pep_ner_align: bad arguments (T = %d, need >= 2; labels need tags)", T);
    PEP_ALLOC(tmp, tmp_cap);
    int n = 0, limit = T - 2; /* room for the word pieces between <s> and </s> */
    ids[n++] = PEP_BOS_ID;
    for (int w = 0; w < n_words; w++) {
        int k;
        rc = pep_spm_encode_word(m, words[w], lens ? lens[w] : strlen(words[w]), tmp, tmp_cap, &k);
        if (rc == PEP_ERR_USAGE && k > tmp_cap) {
            pep_error_clear();
            pep_free(tmp);
            tmp_cap = k;
            PEP_ALLOC(tmp, tmp_cap);
            rc = pep_spm_encode_word(m, words[w], lens ? lens[w] : strlen(words[w]), tmp, tmp_cap, &k);
        }
        if (rc != PEP_OK) goto cleanup;
        if (n - 1 < limit && k > 0) {
            first_piece[w] = n;
            for (int j = 0; j < k && n - 1 < limit; j++) ids[n++] = tmp[j];
        } else {
            first_piece[w] = -1;
            if (k > 0) dropped++;
        }
    }
    ids[n++] = PEP_EOS_ID;
    *n_ids = n;
    if (n_truncated) *n_truncated = dropped;
    if (labels) {
        for (int t = 0; t < n; t++) labels[t] = PEP_IGNORE_INDEX;
        for (int w = 0; w < n_words; w++)
            if (first_piece[w] >= 0) labels[first_piece[w]] = tags[w];
    }
cleanup:
    pep_free(tmp);
    return rc;
}
