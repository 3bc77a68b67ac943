/* Batches without padding (model.h, struct pep_batch): storage, appending sequences, lengths. */
#include <string.h>

#include "core/error.h"
#include "model/model.h"

int pep_batch_alloc(struct pep_batch *b, int max_seqs, int max_tokens)
{
    memset(b, 0, sizeof *b);
    PEP_CHECK(max_seqs >= 1 && max_tokens >= 1, PEP_ERR_USAGE, "batch storage needs at least one sequence and token");
    int rc = PEP_OK;
    PEP_ALLOC_GOTO(rc, b->offsets, (size_t)max_seqs + 1);
    PEP_ALLOC_GOTO(rc, b->input_ids, (size_t)max_tokens);
    PEP_ALLOC_GOTO(rc, b->labels, (size_t)max_tokens);
    b->cap_seqs = max_seqs, b->cap_tokens = max_tokens;
    b->offsets[0] = 0;
    return PEP_OK;
cleanup:
    pep_batch_free(b);
    return rc;
}

void pep_batch_free(struct pep_batch *b)
{
    pep_free(b->offsets);
    pep_free(b->input_ids);
    pep_free(b->labels);
    memset(b, 0, sizeof *b);
}

void pep_batch_clear(struct pep_batch *b)
{
    b->nseq = 0;
    b->seq0 = 0;
    b->offsets[0] = 0;
}

int pep_batch_append(struct pep_batch *b, const int *ids, const int *labels, int len)
{
    int n = b->offsets[b->nseq];
    PEP_CHECK(len >= 1 && b->nseq < b->cap_seqs && n + len <= b->cap_tokens, PEP_ERR_USAGE,
              "a sequence of %d tokens does not fit the batch (%d of %d sequences, %d of %d tokens used)", len,
              b->nseq, b->cap_seqs, n, b->cap_tokens);
    memcpy(b->input_ids + n, ids, (size_t)len * sizeof(int));
    if (labels) memcpy(b->labels + n, labels, (size_t)len * sizeof(int));
    else
        for (int t = 0; t < len; t++) b->labels[n + t] = PEP_IGNORE_INDEX;
    b->offsets[++b->nseq] = n + len;
    return PEP_OK;
}

int pep_batch_max_len(const struct pep_batch *b)
{
    int m = 0;
    for (int i = 0; i < b->nseq; i++)
        if (pep_batch_len(b, i) > m) m = pep_batch_len(b, i);
    return m;
}
